"""`make demo`: the pipeline end to end on this machine, with real codes, at demo size.

compositions -> random structures -> CP2K AIMD labels -> ACE fit (pacemaker) -> potential evaluation and parity
plots -> active set -> ACE melt-quench with gamma tracking (ASE/pyace) -> glass analysis -> archive.

The fit and the melt-quench use the published NaFePO4 data (tests/data) where a demo-sized DFT data set could not
give a usable potential. Prints what it did and where the results are (node PKs, files under demo_output/).
"""

from __future__ import annotations

import pathlib
import sys
import time

from aiida import load_profile, orm
from aiida.engine import run_get_node

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / 'tests' / 'data'
OUT = ROOT / 'demo_output'
SUMMARY: list[tuple[str, orm.Node, str]] = []
# Demo-sized melt-quench: the `fast` schedule, with a longer minimisation and a quicker barostat so that a random
# start (tens of kbar) relaxes within about a picosecond.
MELT_QUENCH_OVERRIDES = {'minimize': {'maxiter': 400}, 'md': {'pdamp': 0.25}, 'melt_quench': {'time_scale': 0.002}}


def stage(title: str):
    print(f'\n== {title}', flush=True)
    return time.perf_counter()


def record(what: str, node: orm.Node, note: str = '') -> None:
    SUMMARY.append((what, node, note))
    print(f'   {what}: {type(node).__name__}<{node.pk}> {note}', flush=True)


def save_figure(node: orm.SinglefileData, name: str) -> pathlib.Path:
    path = OUT / name
    path.write_bytes(node.get_content(mode='rb'))
    return path


def load_code_or_none(label: str):
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_code(label)
    except NotExistent:
        return None


def require_codes(*labels: str) -> None:
    missing = [label for label in labels if load_code_or_none(label) is None]
    if missing:
        print(f'Codes {", ".join(missing)} are not registered in this profile: run `aiida-glassml setup` (or '
              '`make demo`, which runs it) in an environment with python-ace installed.')  # fmt: skip
        sys.exit(1)


def check(process: orm.ProcessNode, what: str) -> None:
    if not process.is_finished_ok:
        print(f'   {what} <{process.pk}> ended with exit status {process.exit_status}: {process.exit_message}')
        print(f'   see `verdi process report {process.pk}`')
        sys.exit(1)


def main() -> int:
    load_profile()
    from aiida_glassml.calcfunctions.analysis_structure import run_structure_analysis
    from aiida_glassml.calcfunctions.potential import build_active_set, evaluate_potential
    from aiida_glassml.calcfunctions.structures import run_random_structure, run_strained_copies
    from aiida_glassml.common.frames import FrameSet
    from aiida_glassml.data import AcePotentialData, TrainingSetData
    from aiida_glassml.workflows.fit_ace import FitAceWorkChain
    from aiida_glassml.workflows.label import LabelWorkChain
    from aiida_glassml.workflows.melt_quench import MeltQuenchWorkChain

    require_codes('pacemaker@localhost', 'pace_yaml2yace@localhost', 'pace_activeset@localhost',
                  'glassml-python@localhost')  # fmt: skip
    OUT.mkdir(exist_ok=True)
    started = time.perf_counter()

    stage('1. Random structures from the Na2O-P2O5 and Na2O-FeO-P2O5 composition diagrams')
    napo3 = run_random_structure({'units': ['Na2O', 'P2O5'], 'fractions': [0.5, 0.5]}, seed=1,
                                 settings={'n_atoms': 20, 'density': 2.5, 'min_distance': 1.9})  # fmt: skip
    record('NaPO3 cell for DFT', napo3, f'{len(napo3.sites)} atoms, {napo3.get_formula()}')
    strained = run_strained_copies(napo3, strains=(0.9, 1.0, 1.1))
    record('strained copy (x1.1)', strained['strain_1_10'], 'of the NaPO3 cell')

    stage('2. High-temperature DFT MD labels with CP2K (fast protocol)')
    cp2k = load_code_or_none('cp2k@localhost')
    if cp2k is None:
        print('   CP2K is not registered: install it with `sudo apt-get install cp2k cp2k-data` and rerun '
              '`make demo`; skipping the DFT stage.')  # fmt: skip
    else:
        builder = LabelWorkChain.get_builder_from_protocol(cp2k, [napo3], engine='cp2k', mode='aimd', protocol='fast')
        results, node = run_get_node(builder)
        check(node, 'LabelWorkChain')
        labels = results['training_set']
        record('CP2K AIMD training set', labels, f'{labels.n_frames} frames of '
               f'{labels.n_atoms_total // labels.n_frames} atoms, energies/forces from CP2K')  # fmt: skip
        calcs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
        print(f'   DFT calculations behind it: {", ".join(f"CalcJob<{c.pk}>" for c in calcs)}')

    stage('3. ACE fit with pacemaker on 30 frames of the published NaFePO4 DFT data (fast protocol: a real fit with a '
          'tiny basis and 5 iterations, to show the machinery; `balanced` is the study setting)')
    frames = FrameSet.read_pacemaker_pickle(DATA / 'test_data.pckl.gzip')
    published_set = TrainingSetData(frames, label='NaFePO4 published test set').store()
    record('published DFT test set', published_set, f'{published_set.n_frames} frames, {published_set.n_atoms_total} atoms')
    fit_data = TrainingSetData(frames.select(range(0, 436, 15)), label='NaFePO4 demo fit data').store()
    builder = FitAceWorkChain.get_builder_from_protocol(orm.load_code('pacemaker@localhost'), fit_data, protocol='fast')
    results, node = run_get_node(builder)
    check(node, 'FitAceWorkChain')
    fitted = results['potential']
    record('fitted ACE potential', fitted, f'yaml+yace+asi, metrics {_short_metrics(results["metrics"])}')
    for key in ('energy_parity', 'force_parity'):
        if key in results:
            print(f'   {key}: {save_figure(results[key], f"fit_{key}.png")}')

    stage('4. The published potential on its held-out test set')
    published = AcePotentialData.get_or_create(DATA / 'output_potential.yaml', yace=DATA / 'output_potential.yace')
    evaluated = evaluate_potential(published, published_set)
    metrics = evaluated['metrics']
    record('published potential', published, f'elements {published.elements}, cutoff {published.cutoff} Å')
    record('its test-set metrics', metrics, f'energy MAE {metrics["energy_mae"]:.1f} meV/atom, '
           f'force MAE {metrics["force_mae"]:.0f} meV/Å')  # fmt: skip

    stage('5. Active set (MaxVol, pace_activeset) so MD can track the extrapolation grade')
    with_asi = build_active_set(published, TrainingSetData(frames.select(range(0, 436, 8))).store(),
                                orm.Dict({'all_atoms': True}))  # fmt: skip
    record('published potential + active set', with_asi)

    stage('6. ACE melt-quench of a 112-atom NaFePO4 cell in ASE/pyace, gamma tracked (fast protocol)')
    nafepo4 = run_random_structure({'units': ['Na2O', 'FeO', 'P2O5'], 'fractions': [0.25, 0.5, 0.25]}, seed=2,
                                   settings={'n_atoms': 112, 'density': 3.07, 'min_distance': 1.9,
                                             'units_geometry': 'tetrahedra'})  # fmt: skip
    record('NaFePO4 start structure', nafepo4, f'{len(nafepo4.sites)} atoms, rigid PO4 units placed at random')
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        orm.load_code('glassml-python@localhost'), nafepo4, potential=with_asi, engine='ase', protocol='fast',
        overrides=MELT_QUENCH_OVERRIDES,
    )
    results, node = run_get_node(builder)
    check(node, 'MeltQuenchWorkChain')
    glass = next(iter(results['structures'].values()))
    record('quenched glass (replica 1)', glass, f'density {_densities(results["densities"])}')
    record('Tg estimate', results['tg'], f'{results["tg"].get("tg", float("nan")):.0f} K (demo quench, not science)')
    print(f'   cooling curve: {save_figure(results["cooling_curve_figure"], "cooling_curve.png")}')

    stage('7. Glass analysis of the quenched glass and of a published 3003-atom ACE glass')
    from aiida_glassml.analysis.io import read_structure

    for label, structure in (('demo glass', glass),
                             ('published ACE glass', orm.StructureData(ase=read_structure(DATA / 'glasses' / 'ACE_300K_1.dat')).store())):  # fmt: skip
        outputs = run_structure_analysis(structure)
        res = outputs['results'].get_dict()
        coordination = res.get('coordination', {})
        record(f'{label} analysis', outputs['results'],
               f'P-O CN {coordination.get("P", {}).get("O", float("nan")):.2f}, '
               f'Fe-O CN {coordination.get("Fe", {}).get("O", float("nan")):.2f}, '
               f'P-O-P {res.get("bridging", {}).get("P-O-P", float("nan")):.3f}')  # fmt: skip
        slug = label.replace(' ', '_')
        print(f'   g(r): {save_figure(outputs["rdf_figure"], f"{slug}_rdf.png")}')
        print(f'   S(Q): {save_figure(outputs["structure_factor_figure"], f"{slug}_sq.png")}')

    stage('8. Provenance: the fitted potential back to its data, and an archive of everything')
    qb = orm.QueryBuilder().append(AcePotentialData, filters={'id': fitted.pk}, tag='pot')
    qb.append(orm.ProcessNode, with_outgoing='pot', tag='proc').append(TrainingSetData, with_outgoing='proc')
    sources = sorted({n.pk for (n,) in qb.all()})
    print(f'   TrainingSetData feeding the fit: {sources}')
    archive = OUT / 'demo.aiida'
    archive.unlink(missing_ok=True)
    from aiida.tools.archive import create_archive

    create_archive([node for _, node, _ in SUMMARY], filename=archive)
    print(f'   archive: {archive} (`verdi archive import {archive.name}` elsewhere)')

    print(f'\nDone in {time.perf_counter() - started:.0f} s. What was made:')
    width = max(len(w) for w, _, _ in SUMMARY)
    for what, node, note in SUMMARY:
        print(f'  {what:<{width}}  {type(node).__name__ + f"<{node.pk}>":<26} {note}')
    print(f'Figures and the archive are in {OUT}/; inspect any node with `verdi node show PK` '
          '(AIIDA_PATH=.aiida, as set by the Makefile).')
    return 0


def _short_metrics(metrics: orm.Dict) -> str:
    data = metrics.get_dict()
    keys = ('train_energy_mae', 'test_energy_mae', 'train_force_mae', 'test_force_mae')
    return ', '.join(f'{k}={data[k]:.1f}' for k in keys if isinstance(data.get(k), (int, float)))


def _densities(densities: orm.Dict) -> str:
    data = densities.get_dict()
    mean = data.get('mean')
    return f'{mean:.2f} g/cm3 (mean of replicas)' if isinstance(mean, (int, float)) else str(data)[:60]


if __name__ == '__main__':
    sys.exit(main())

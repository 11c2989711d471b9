"""Benchmark: batch active learning against random sampling at equal label budgets (issue 10).

The published NaFePO4 ACE potential (tests/data/output_potential.yaml) is the teacher: it labels every frame, so the
comparison costs no DFT and the "truth" is known everywhere. Both arms start from the same seed data (teacher labels of
5000 K melt frames) and the same first fit, then grow their data set by the same number of frames per round and up-fit
with the same settings:

* active learning: ``ActiveLearningWorkChain`` (explore at 5000 K -> 0 K tracking gamma, pace_select, teacher labels);
* random sampling: frames drawn at random from high-temperature teacher MD (the common practice the study argues
  against), labelled by the teacher.

Reported: force RMSE on a held-out teacher-labelled set of melt (3000 K) and glass (quenched, 300 K) frames after
each round, and whether each final potential survives NVT at 5000 K. Run through ``make benchmarks`` (embedded
profile) or ``.venv/bin/python benchmarks/active_learning.py [--rounds 3] [--select 10]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
os.environ.setdefault('AIIDA_PATH', str(ROOT / '.aiida'))

TEACHER = ROOT / 'tests' / 'data' / 'output_potential.yaml'
#: the study's composition units, NaFePO4 = NaO0.5 + FeO + PO2.5
NAFEPO4 = {'units': ['NaO0.5', 'FeO', 'PO2.5'], 'fractions': [1 / 3, 1 / 3, 1 / 3]}
N_ATOMS = 56


def teacher_calculator():
    from pyace import PyACECalculator

    return PyACECalculator(str(TEACHER))


def teacher_md_frames(seeds, temperature: float, n_frames: int, quench_to: float | None = None) -> list:
    """Frames of teacher MD (the project's ASE runner and MD protocol) from random NaFePO4 packings: NVT at
    ``temperature``, or, with ``quench_to``, a 5000 K/ps quench to it and a short hold; labelled by the teacher."""
    from aiida_glassml.md import ase_runner
    from aiida_glassml.md.protocol import NVT, MDProtocol, Minimize, Ramp
    from aiida_glassml.structures import generate_random_structure

    frames = []
    for seed in seeds:
        atoms = generate_random_structure(NAFEPO4, int(seed), {'n_atoms': N_ATOMS}).atoms
        stages = [Minimize(ftol=0.5, maxiter=50), NVT(temperature, 0.3)]
        if quench_to is not None:
            stages += [Ramp(temperature, quench_to, 5000.0), NVT(quench_to, 0.2)]
        per_run = max(1, n_frames // len(seeds))
        total = sum(MDProtocol(stages=stages).stage_steps(s) for s in stages)
        protocol = MDProtocol(stages=stages, seed=int(seed), thermo_interval=50,
                              dump_interval=max(1, total // per_run))  # fmt: skip
        with tempfile.TemporaryDirectory() as folder:
            ase_runner.run_protocol(atoms, teacher_calculator(), protocol, folder, log=None)
            from ase.io import read

            dumped = read(pathlib.Path(folder) / ase_runner.FILES['dump'], index=':')
        frames.extend(dumped[-per_run:])
    return label_with_teacher(frames)


def label_with_teacher(frames) -> list:
    from ase.calculators.singlepoint import SinglePointCalculator

    calculator, labelled = teacher_calculator(), []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calculator
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        labelled.append(atoms)
    return labelled


def force_rmse(potential, held_out) -> float:
    from aiida_glassml.calcfunctions.potential import run_evaluate_potential

    return float(run_evaluate_potential(potential, held_out)['metrics']['force_rmse'])


def stability(potential, seed: int = 7, time_ps: float = 0.5) -> dict:
    """NVT at 5000 K from a random packing (the loop's stability test, pure ASE here)."""
    from aiida_glassml.fitting.active_learning import stability_verdict
    from aiida_glassml.md import ase_runner
    from aiida_glassml.md.outputs import THERMO_COLUMNS
    from aiida_glassml.md.protocol import stability_test
    from aiida_glassml.structures import generate_random_structure

    atoms = generate_random_structure(NAFEPO4, seed, {'n_atoms': N_ATOMS}).atoms
    protocol = stability_test(time=time_ps, thermo_interval=10, seed=seed)
    files = potential._cached_files()
    calculator = ase_runner.load_calculator({'type': 'ace', 'yaml': str(files['yaml']), 'asi': str(files['asi'])})
    with tempfile.TemporaryDirectory() as folder:
        results = ase_runner.run_protocol(atoms, calculator, protocol, folder, log=None)
        thermo = np.loadtxt(pathlib.Path(folder) / ase_runner.FILES['thermo'], ndmin=2)
    columns = {name: thermo[:, i] for i, name in enumerate(THERMO_COLUMNS)}
    exit_status = 350 if results['stop_reason'] == 'gamma_halt' else (0 if results['stop_reason'] == 'completed' else 1)
    return stability_verdict(columns['time'], columns['potential_energy'], len(atoms), results['stop_reason'],
                             exit_status, results['n_steps'] * protocol.timestep)  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--select', type=int, default=10, help='frames added per round (max_select)')
    parser.add_argument('--seed-frames', type=int, default=8)
    args = parser.parse_args()

    from aiida import load_profile, orm
    from aiida.engine import run_get_node

    load_profile()
    from aiida_glassml.data.ace_potential import AcePotentialData
    from aiida_glassml.data.training_set import TrainingSetData
    from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain, fit_inputs
    from aiida_glassml.workflows.fit_ace import FitAceWorkChain
    from aiida_glassml.workflows.label import level_of_theory_for

    started = time.perf_counter()
    python, pacemaker = orm.load_code('glassml-python'), orm.load_code('pacemaker')
    teacher = AcePotentialData.get_or_create(TEACHER)
    from aiida_glassml.structures import generate_random_structure

    probe = orm.StructureData(ase=generate_random_structure(NAFEPO4, 1, {'n_atoms': N_ATOMS}).atoms)
    level = level_of_theory_for('potential', {}, [probe], python, potential=teacher)

    def dataset(frames):
        return TrainingSetData.from_atoms(frames, level_of_theory=level).store()

    seed_data = dataset(teacher_md_frames([11, 12], 5000.0, args.seed_frames))
    held_out = dataset(teacher_md_frames([21, 22], 3000.0, 8) + teacher_md_frames([23, 24], 5000.0, 8, quench_to=300.0))
    pool = teacher_md_frames(range(31, 31 + 2 * args.rounds), 5000.0, 10 * args.select * args.rounds)
    print(f'seed data {seed_data.n_frames} frames, held-out {held_out.n_frames} (melt 3000 K + glass 300 K), '
          f'random pool {len(pool)} frames at 5000 K')

    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        seed_data, {'NaFePO4': NAFEPO4}, test_set=held_out, md_code=python, label_code=python,
        pacemaker_code=pacemaker, label_engine='potential', label_potential=teacher, protocol='fast',
        overrides={'settings': {'max_iterations': args.rounds, 'max_select': args.select},
                   'exploration': {'packings_per_composition': 2, 'structure_settings': {'n_atoms': N_ATOMS}},
                   'stability': {'enabled': False}},
    )  # fmt: skip
    _, loop = run_get_node(builder)
    rows = loop.outputs.report['rows']
    initial_fit = [c for c in loop.called if c.process_label == 'FitAceWorkChain'][0]
    al_rmse = [force_rmse(initial_fit.outputs.potential, held_out)]
    al_labels = [seed_data.n_frames]
    for row in rows:
        if row.get('test_force_rmse') is not None:
            al_rmse.append(row['test_force_rmse'])
            al_labels.append(row['dataset_frames'])

    # random sampling: the same first potential, the same number of new frames per round, the same up-fit
    rng = np.random.default_rng(0)
    order = rng.permutation(len(pool))
    potential, frames, used = initial_fit.outputs.potential, [], 0
    random_rmse, random_labels = [al_rmse[0]], [al_labels[0]]
    for target in al_labels[1:]:
        extra = target - random_labels[-1]
        frames += [pool[i] for i in order[used:used + extra]]
        used += extra
        data = dataset(seed_data.get_atoms() + frames)
        inputs = fit_inputs(builder.fit._inputs(prune=True), data, 'random_fit', potential)  # the loop's up-fit
        inputs.make_plots = orm.Bool(False)
        result, node = run_get_node(FitAceWorkChain, **inputs)
        assert node.is_finished_ok, node.exit_message
        potential = result['potential']
        random_rmse.append(force_rmse(potential, held_out))
        random_labels.append(data.n_frames)

    al_final, random_final = loop.outputs.potential, potential
    print(f'\nActive learning vs random sampling (teacher: published NaFePO4 ACE; {N_ATOMS}-atom cells; '
          f'ActiveLearningWorkChain<{loop.pk}>, stop: {loop.outputs.report["stop"]["stop_reason"]})\n')
    print('| round | labels | AL force RMSE (meV/Å) | random force RMSE (meV/Å) |')
    print('| ---: | ---: | ---: | ---: |')
    for index, (labels, a, r) in enumerate(zip(al_labels, al_rmse, random_rmse)):
        print(f'| {index} | {labels} | {a:.0f} | {r:.0f} |')
    target = random_rmse[-1]
    reached = next((labels for labels, a in zip(al_labels, al_rmse) if a <= target), None)
    print(f'\nlabels active learning needs to reach random sampling\'s final error ({target:.0f} meV/Å with '
          f'{random_labels[-1]} labels): {reached if reached is not None else "not reached"}'
          + (f' ({reached / random_labels[-1]:.0%} of the labels; target ≤ 50 %)' if reached else ''))
    for name, node in (('active learning', al_final), ('random sampling', random_final)):
        verdict = stability(node)
        state = 'survived' if verdict['survived'] else f'failed at {verdict["failed_at_ps"]:.3f} ps ({verdict["reason"]})'
        print(f'5000 K stability, {name} final potential: {state}')
    print(f'\nwall time {time.perf_counter() - started:.0f} s')


if __name__ == '__main__':
    main()

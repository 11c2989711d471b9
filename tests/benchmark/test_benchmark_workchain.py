"""PotentialBenchmarkWorkChain for real: the published NaFePO4 ACE potential and CHGNet 0.3.0 evaluated on a slice of
the published DFT test set (EvaluatePotentialCalculation), then the same short melt-quench of one 28-atom NaFePO4
cell with each (ASE: pyace and CHGNet), the structure analysis and elastic moduli of both glasses, side by side in
the tables and overlaid figures; bad input refused before anything is stored."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.workflows.benchmark import BenchmarkInputError, PotentialBenchmarkWorkChain

#: a melt-quench of ~60 steps after 20 of minimisation (one replica; thermo every 2 steps for the Tg fit's 7 lines on
#: the ramp), the `fast` analysis and one strain step in xx and xy (C11, C12, C44), minimised to 0.1 eV/Å: the
#: machinery, not science
OVERRIDES = {
    'melt_quench': {'overrides': {'replicas': 1, 'melt_quench': {'time_scale': 0.0001, 'cooling_rate': 60000.0},
                                  'minimize': {'maxiter': 20}, 'md': {'thermo_interval': 2}, 'trajectory_frames': 5}},
    'elastic': {'overrides': {'strain': {'n_steps': 1, 'components': ['xx', 'xy'], 'ftol': 0.1, 'maxiter': 200}}},
}  # fmt: skip


@pytest.fixture(scope='module', autouse=True)
def torch_one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def python_code(installed_code):
    return installed_code('python', 'glassml.ase_md', label='glassml-python')


@pytest.fixture(scope='module')
def potentials(aiida_profile, reference_potential_yaml):
    from aiida_glassml.data.ace_potential import AcePotentialData
    from aiida_glassml.data.mlip_potential import MlipPotentialData

    return {'ace': AcePotentialData.get_or_create(reference_potential_yaml),
            'chgnet': MlipPotentialData.chgnet().store()}  # fmt: skip


@pytest.fixture(scope='module')
def test_slice(aiida_profile, reference_test_set_path):
    """The three smallest frames (100 atoms each) of the published NaFePO4 test set, stored."""
    from aiida_glassml.data import TrainingSetData

    frames = FrameSet.read_pacemaker_pickle(reference_test_set_path)
    return TrainingSetData(frames.select(np.argsort(frames.n_atoms, kind='stable')[:3].tolist())).store()


@pytest.fixture(scope='module')
def small_cell():
    """28 atoms of NaFePO4 (4 formula units) at the glass density, as tests/md_ase makes them."""
    path = pathlib.Path(__file__).parents[1] / 'md_ase' / 'conftest.py'
    spec = importlib.util.spec_from_file_location('_glassml_md_ase_conftest', path)
    md_ase = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(md_ase)
    return orm.StructureData(ase=md_ase.random_nafepo4(formula_units=4, seed=0))


@pytest.mark.slow
def test_ace_and_chgnet_side_by_side(python_code, potentials, test_slice, small_cell):
    from aiida_glassml.common import mlip

    builder = PotentialBenchmarkWorkChain.get_builder_from_protocol(
        python_code, potentials, test_set=test_slice, structures={'nafepo4': small_cell}, protocol='fast',
        overrides=OVERRIDES)  # fmt: skip
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message

    # metrics: the evaluation jobs' numbers, one row per potential; CHGNet's are those of its own calculator
    rows = {row['potential']: row for row in results['metrics_table']['rows']}
    assert set(rows) == {'ace', 'chgnet'} and rows['chgnet']['kind'] == 'mlip'
    for label in rows:
        metrics = results['metrics'][label].get_dict()
        assert rows[label]['force_mae'] == pytest.approx(metrics['force_mae'])
        assert rows[label]['energy_mae_offset'] == pytest.approx(metrics['energy_mae_offset'])
        assert metrics['n_frames'] == 3
    own = mlip.evaluate(potentials['chgnet'].get_calculator(), test_slice.get_frameset())[0]
    assert rows['chgnet']['force_mae'] == pytest.approx(own['force_mae'], rel=1e-6)
    assert rows['chgnet']['energy_mae'] == pytest.approx(own['energy_mae'], rel=1e-6)
    # a universal PBE model's totals sit far from VASP PBE+U's: the offset takes most of it away
    assert rows['chgnet']['energy_mae_offset'] < rows['chgnet']['energy_mae']
    markdown = results['metrics_markdown'].get_content()
    assert '| ace | ace | 3 |' in markdown and '| chgnet | mlip | 3 |' in markdown
    assert results['metrics_csv'].get_content().startswith('potential,kind,n_frames,')

    # glasses: one per potential from the same start, analysed and strained the same way
    assert set(results['glasses']) == {'ace_nafepo4_replica_0', 'chgnet_nafepo4_replica_0'}
    glasses = {row['potential']: row for row in results['structure_table']['rows']}
    assert set(glasses) == {'ace', 'chgnet'}
    for label, row in glasses.items():
        glass = results['glasses'][f'{label}_nafepo4_replica_0']
        assert row['density'] == pytest.approx(_density(glass), rel=0.02)
        assert row['qn'].startswith('P ') and row['former_former'].startswith('Fe-Fe')
        assert row['bulk_modulus'] is not None and np.isfinite(row['bulk_modulus'])
        md = next(n for n in node.called_descendants if n.process_label == 'AseMDCalculation'
                  and n.inputs.potential.uuid == potentials[label].uuid).outputs.results  # fmt: skip
        assert row['us_per_atom_step'] == pytest.approx(1e6 * md['wall_time_s'] / (28 * md['n_steps']))
    assert glasses['chgnet']['us_per_atom_step'] > 3 * glasses['ace']['us_per_atom_step']  # a GNN costs more
    called = {n.process_label for n in node.called}
    assert called == {'EvaluatePotentialCalculation', 'MeltQuenchWorkChain', 'GlassAnalysisWorkChain',
                      'ElasticWorkChain', 'tabulate_benchmark'}
    chgnet_md = [n for n in node.called_descendants if n.process_label == 'AseMDCalculation'
                 and n.inputs.potential.uuid == potentials['chgnet'].uuid]  # fmt: skip
    assert chgnet_md, 'the CHGNet glass was made with the CHGNet node as the potential'
    strained = [n for n in node.called_descendants if n.process_label == 'ElasticAseCalculation'
                and 'potential' in n.inputs and n.inputs.potential.uuid == potentials['chgnet'].uuid]  # fmt: skip
    assert strained, 'the CHGNet moduli come from the CHGNet node as the potential'
    assert '| ace | nafepo4 |' in results['structure_markdown'].get_content()
    for name in ('rdf_nafepo4', 'sq_nafepo4', 'cooling_curve_ace_nafepo4', 'cooling_curve_chgnet_nafepo4'):
        assert results['figures'][name].get_content(mode='rb')[:4] == b'\x89PNG'


def test_test_set_only_and_a_classical_potential(python_code, potentials, test_slice):
    """No structures: only the evaluation runs. A classical potential (BMP) has no DFT-scale energies: its row says
    so instead of numbers, and nothing is evaluated for it."""
    from aiida_glassml.data.classical_potential import ClassicalPotentialData
    from aiida_glassml.workflows.benchmark import CLASSICAL_NOTE

    bmp = ClassicalPotentialData.from_library('bmp')
    builder = PotentialBenchmarkWorkChain.get_builder_from_protocol(
        python_code, {'ace': potentials['ace'], 'bmp': bmp}, test_set=test_slice, protocol='fast')
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    rows = {row['potential']: row for row in results['metrics_table']['rows']}
    assert rows['bmp']['kind'] == 'classical' and rows['bmp']['note'] == CLASSICAL_NOTE
    assert rows['bmp']['force_mae'] is None and set(results['metrics']) == {'ace'}
    assert 0 < rows['ace']['force_mae'] < 2000 and rows['ace']['n_frames'] == 3
    assert [n.process_label for n in node.called] == ['EvaluatePotentialCalculation', 'tabulate_benchmark']
    assert 'structure_table' not in results and 'glasses' not in results
    assert f'| bmp | classical | – | – | – | – | – | – | – | {CLASSICAL_NOTE} |' in (
        results['metrics_markdown'].get_content())


def _density(structure) -> float:
    atoms = structure.get_ase()
    return atoms.get_masses().sum() * 1.66053906660 / atoms.get_volume()


def test_bad_input_is_refused_before_storing(python_code, potentials, test_slice, small_cell, node_count):
    from aiida_glassml.data.mlip_potential import MlipPotentialData

    narrow = MlipPotentialData(calculator='chgnet.model.dynamics:CHGNetCalculator', elements=['Na', 'P', 'O'])
    before = node_count()
    cases = [
        (dict(potentials={}, test_set=test_slice), 'no potentials: give at least one under `potentials`'),
        (dict(potentials=potentials), 'nothing to benchmark: give a `test_set`'),
        (dict(potentials={'narrow': narrow}, test_set=test_slice),
         r"potential `narrow` has no parameters for \['Fe'\] of the test set"),
        (dict(potentials={'narrow': narrow}, structures={'nafepo4': small_cell}),
         r"potential `narrow` has no parameters for \['Fe'\] of structure `nafepo4`"),
        (dict(potentials=potentials, test_set=test_slice, reference_energies={'Na': -0.07}),
         r"potential `ace` on the test set: reference energies give \['Na'\] but the data also contains"),
    ]  # fmt: skip
    for kwargs, message in cases:
        with pytest.raises(BenchmarkInputError, match=message):
            PotentialBenchmarkWorkChain.get_builder_from_protocol(python_code, protocol='fast', **kwargs)
    with pytest.raises(BenchmarkInputError, match=r'melt-quench of `nafepo4` with `ace`: unknown override key '
                                                  r'`replica`'):  # fmt: skip
        PotentialBenchmarkWorkChain.get_builder_from_protocol(
            python_code, potentials, structures={'nafepo4': small_cell}, protocol='fast',
            overrides={'melt_quench': {'overrides': {'replica': 1}}})  # fmt: skip
    assert node_count() == before

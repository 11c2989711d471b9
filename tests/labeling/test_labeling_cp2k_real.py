"""Real CP2K: AIMD of a 20-atom NaPO3 cell (4 steps, a frame every 2) and two single points, through LabelWorkChain.
The frames must agree with what aiida-cp2k's own parser made of the same run."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.common.units import HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, HARTREE_TO_EV
from aiida_glassml.workflows.label import LabelWorkChain

pytestmark = pytest.mark.slow


def _calcjobs(node):
    return sorted((n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime)


@pytest.fixture(scope='module')
def aimd_run(cp2k_code, napo3_structure):
    builder = LabelWorkChain.get_builder_from_protocol(
        cp2k_code, {'napo3': napo3_structure}, engine='cp2k', mode='aimd', protocol='fast'
    )
    _, node = run_get_node(builder)
    return node


@pytest.fixture(scope='module')
def single_point_run(cp2k_code, napo3_rattled):
    builder = LabelWorkChain.get_builder_from_protocol(
        cp2k_code, napo3_rattled, engine='cp2k', mode='single_point', protocol='fast',
        overrides={'sample_type': 'active_learning', 'iteration': 3},
    )  # fmt: skip
    _, node = run_get_node(builder)
    return node


def test_aimd_frames_match_cp2k_parser(aimd_run):
    assert aimd_run.is_finished_ok, aimd_run.exit_message
    training_set = aimd_run.outputs.training_set
    assert isinstance(training_set, TrainingSetData)
    frames = training_set.get_frameset()
    (calc,) = _calcjobs(aimd_run)
    trajectory = calc.outputs.output_trajectory  # aiida-cp2k's parse of the same files (Hartree, Hartree/Bohr)
    # fast: 4 steps, a frame every 2 steps -> steps 0, 2, 4
    assert frames.n_frames == 3 == trajectory.numsteps
    assert list(trajectory.get_stepids()) == [0, 2, 4]
    np.testing.assert_allclose(frames.energy, trajectory.get_array('energies') * HARTREE_TO_EV, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        frames.forces.reshape(3, 20, 3), trajectory.get_array('forces') * HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, atol=1e-6
    )
    np.testing.assert_allclose(frames.positions.reshape(3, 20, 3), trajectory.get_positions(), atol=1e-8)
    np.testing.assert_allclose(frames.cells, trajectory.get_cells(), atol=1e-8)
    # The last MD energy is what the plugin reports as the run's energy.
    assert frames.energy[-1] == pytest.approx(calc.outputs.output_parameters['energy'] * HARTREE_TO_EV, abs=1e-5)
    assert frames.has_stress.all()
    assert not frames.has_magmoms.any()  # closed shell, `uks: auto` -> restricted
    # The hot MD moves atoms: later frames differ from the start structure.
    assert np.abs(frames.positions[20:40] - frames.positions[:20]).max() > 0.01


def test_aimd_metadata(aimd_run):
    metadata = aimd_run.outputs.training_set.get_frameset().metadata
    (calc,) = _calcjobs(aimd_run)
    assert {m['source_uuid'] for m in metadata} == {calc.uuid}
    assert {m['sample_type'] for m in metadata} == {'aimd'}
    assert {m['temperature'] for m in metadata} == {5000.0}
    assert {m['composition'] for m in metadata} == {'NaPO3'}
    report = aimd_run.outputs.report.get_dict()
    assert report['failed'] == []
    assert report['n_frames'] == 3


def test_single_points_match_cp2k_parser(single_point_run, napo3_rattled):
    assert single_point_run.is_finished_ok, single_point_run.exit_message
    frames = single_point_run.outputs.training_set.get_frameset()
    calcs = _calcjobs(single_point_run)
    assert frames.n_frames == 2 == len(calcs)
    by_uuid = {m['source_uuid']: index for index, m in enumerate(frames.metadata)}
    for calc in calcs:
        index = by_uuid[calc.uuid]
        assert frames.energy[index] == pytest.approx(calc.outputs.output_parameters['energy'] * HARTREE_TO_EV, abs=1e-5)
        structure = calc.inputs.structure
        np.testing.assert_allclose(frames.positions[index * 20 : (index + 1) * 20], structure.get_ase().positions)
    assert frames.has_stress.all()
    # Rattled copies: non-zero forces, different for the two structures. (`fast` is a CI setting: at 200 Ry the
    # Na semicore states leave the forces far from translation-invariant, so no physics is checked here.)
    forces = frames.forces.reshape(2, 20, 3)
    assert np.abs(forces).max() > 0.1
    assert np.abs(forces[0] - forces[1]).max() > 0.01
    assert frames.energy[0] != frames.energy[1]
    assert {m['sample_type'] for m in frames.metadata} == {'active_learning'}
    assert {m['iteration'] for m in frames.metadata} == {3}
    assert {m['temperature'] for m in frames.metadata} == {None}


def test_provenance_walks_back_to_every_calcjob(aimd_run, single_point_run):
    for workchain in (aimd_run, single_point_run):
        training_set = workchain.outputs.training_set
        query = orm.QueryBuilder()
        query.append(TrainingSetData, filters={'id': training_set.pk}, tag='training_set')
        query.append(orm.CalcFunctionNode, with_outgoing='training_set', tag='collect')
        query.append(orm.Data, with_outgoing='collect', tag='source')
        query.append(orm.CalcJobNode, with_outgoing='source', project=['uuid'])
        found = set(query.all(flat=True))
        expected = {calc.uuid for calc in _calcjobs(workchain)}
        assert expected and found == expected
        assert {m['source_uuid'] for m in training_set.get_frameset().metadata} <= found

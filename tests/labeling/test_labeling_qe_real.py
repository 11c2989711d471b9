"""Real Quantum ESPRESSO: AIMD of a 6-atom SiO2 cell (ideal β-cristobalite) (Debian's Si/O PBE ultrasoft UPFs as an aiida-pseudo family,
the family's 22 Ry, Γ point, 4 steps) through LabelWorkChain; the frames must agree with aiida-quantumespresso's parsed output."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.common.units import GPA_TO_EV_PER_A3
from aiida_glassml.workflows.label import LabelWorkChain

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def qe_aimd_run(pw_code, sio2_structure, qe_pseudo_family):
    builder = LabelWorkChain.get_builder_from_protocol(
        pw_code, [sio2_structure], engine='qe', mode='aimd', protocol='fast', pseudo_family=qe_pseudo_family.label
    )
    _, node = run_get_node(builder)
    return node


def test_qe_aimd_frames_match_plugin(qe_aimd_run):
    assert qe_aimd_run.is_finished_ok, qe_aimd_run.exit_message
    frames = qe_aimd_run.outputs.training_set.get_frameset()
    (calc,) = [n for n in qe_aimd_run.called_descendants if isinstance(n, orm.CalcJobNode)]
    assert calc.inputs.parameters['CONTROL']['calculation'] == 'md'
    # Cutoffs recommended by the family (22/176 Ry), above the fast protocol's minimum (20/160 Ry).
    system = calc.inputs.parameters['SYSTEM']
    assert (system['ecutwfc'], system['ecutrho']) == (22.0, 176.0)
    trajectory = calc.outputs.output_trajectory
    energies = trajectory.get_array('energy')
    assert len(energies) == 5  # start structure + 4 steps
    # A frame every 2 steps: force evaluations 0, 2, 4.
    assert frames.n_frames == 3
    np.testing.assert_allclose(frames.energy, energies[[0, 2, 4]], atol=1e-8)
    np.testing.assert_allclose(frames.forces.reshape(3, 6, 3), trajectory.get_array('forces')[[0, 2, 4]], atol=1e-8)
    np.testing.assert_allclose(
        frames.stress, -trajectory.get_array('stress')[[0, 2, 4]][:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        * GPA_TO_EV_PER_A3, atol=1e-10,
    )  # fmt: skip
    assert frames.energy[-1] == pytest.approx(calc.outputs.output_parameters['energy'], abs=1e-6)
    assert {m['composition'] for m in frames.metadata} == {'SiO2'}
    assert {m['source_uuid'] for m in frames.metadata} == {calc.uuid}
    assert np.abs(frames.positions[12:18] - frames.positions[:6]).max() > 1e-3  # atoms moved


def test_qe_missing_element_in_family(pw_code, qe_pseudo_family, node_count):
    from ase import Atoms

    structure = orm.StructureData(ase=Atoms('NaO', positions=[[0, 0, 0], [2, 0, 0]], cell=[5, 5, 5], pbc=True))
    before = node_count()
    with pytest.raises(LabelingInputError, match='has no pseudopotential for Na'):
        LabelWorkChain.get_builder_from_protocol(
            pw_code, [structure], engine='qe', mode='single_point', pseudo_family=qe_pseudo_family.label
        )
    with pytest.raises(LabelingInputError, match='is not installed'):
        LabelWorkChain.get_builder_from_protocol(pw_code, [structure], engine='qe', pseudo_family='no/such/family')
    assert node_count() == before

"""VASP through aiida-vasp's `mock-vasp` with recorded outputs (see data/vasp_mock/README.md)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.common import units
from aiida_glassml.workflows.label import LabelWorkChain

MOCK = pathlib.Path(__file__).parent / 'data' / 'vasp_mock'


@pytest.fixture(scope='module')
def potcar_family(aiida_profile):
    from aiida_vasp.data.potcar import PotcarData

    PotcarData.upload_potcar_family(str(MOCK / 'potcar'), 'glassml-test-PBE', 'dummy POTCARs', stop_if_existing=False)
    return 'glassml-test-PBE'


@pytest.fixture(scope='module')
def si_structure(aiida_profile):
    cell = [[1.95, 1.95, 0.0], [0.0, 1.95, 1.95], [1.95, 0.0, 1.95]]
    structure = orm.StructureData(cell=cell)
    structure.append_atom(position=np.dot([0.1, 0.0, 0.0], cell), symbols='Si')
    return structure


@pytest.fixture(scope='module')
def vasp_run(mock_vasp_code, si_structure, potcar_family):
    builder = LabelWorkChain.get_builder_from_protocol(
        mock_vasp_code, {'si': si_structure}, engine='vasp', mode='aimd', protocol='fast',
        overrides={'vasp': {'potcars': {'Si': 'Si'}}}, potential_family=potcar_family,
    )  # fmt: skip
    _, node = run_get_node(builder)
    return node


def test_vasp_mock_frames_match_plugin(vasp_run, si_structure):
    assert vasp_run.is_finished_ok, vasp_run.exit_message  # frames were produced
    (calc,) = [n for n in vasp_run.called_descendants if isinstance(n, orm.CalcJobNode)]
    incar = calc.inputs.parameters.get_dict()
    assert incar['encut'] == 300 and incar['ibrion'] == 0 and incar['ispin'] == 2
    trajectory = calc.outputs.trajectory
    frames = vasp_run.outputs.training_set.get_frameset()
    # 5 recorded ionic steps, a frame every 2: steps 0, 2, 4
    energies = trajectory.get_array('energy_free') if 'energy_free' in trajectory.get_arraynames() else None
    assert frames.n_frames == 3
    np.testing.assert_allclose(frames.energy, energies[[0, 2, 4]])
    np.testing.assert_allclose(frames.forces.reshape(3, 1, 3), trajectory.get_array('forces')[[0, 2, 4]])
    np.testing.assert_allclose(frames.cells, trajectory.get_array('cells')[[0, 2, 4]])
    assert {m['source_uuid'] for m in frames.metadata} == {calc.uuid}
    # vasprun.xml positions are fractional: the first frame is the input structure in Å.
    np.testing.assert_allclose(frames.positions[0], si_structure.sites[0].position, atol=1e-6)
    assert frames.has_stress.all()
    stress = trajectory.get_array('stress')[[0, 2, 4]][:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]  # kbar, VASP sign
    np.testing.assert_allclose(frames.stress, -stress * units.KBAR_TO_EV_PER_A3)
    assert {m['composition'] for m in frames.metadata} == {'Si'}
    # The recorded run is an unconverged relaxation, so VaspWorkChain ends with 504; the report says so, and the
    # frames of its CalcJob are kept all the same.
    (failure,) = vasp_run.outputs.report['failed']
    assert failure['what'].startswith('WorkChain') and '504' in failure['why']

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


def recorded_scf_steps() -> tuple[list[int], int]:
    """SCF iterations of every ionic step of the recorded vasprun.xml, and its NELM: read here, independently of the
    plugin, to know which steps stopped at the iteration limit."""
    import xml.etree.ElementTree as ET

    root = ET.parse(MOCK / 'registry' / 'si_md' / 'out' / 'vasprun.xml').getroot()
    nelm = int(root.find("incar/i[@name='NELM']").text)
    return [len(step.findall('scstep')) for step in root.findall('calculation')], nelm


def test_vasp_mock_succeeds(vasp_run):
    """A complete MD has as many ionic steps as NSW, which VaspWorkChain's relaxation check reads as 'ionic relaxation
    not converged' (504) unless its settings say CHECK_IONIC_CONVERGENCE False: the run must end OK, no failure."""
    (workchain,) = [n for n in vasp_run.called if n.process_label == 'VaspWorkChain']
    assert workchain.is_finished_ok, f'VaspWorkChain<{workchain.pk}>: {workchain.exit_status} {workchain.exit_message}'
    assert vasp_run.is_finished_ok, vasp_run.exit_message
    report = vasp_run.outputs.report.get_dict()
    assert report['failed'] == [] and report['failed_structures'] == [] and report['failure_fraction'] == 0.0


def test_vasp_mock_drops_the_step_that_hit_nelm(vasp_run):
    iterations, nelm = recorded_scf_steps()
    assert iterations == [15, 9, 9, 7, 6] and nelm == 15  # step 0 stopped at NELM: its energy and forces are no label
    report = vasp_run.outputs.report.get_dict()
    assert report['unconverged_scf_steps'] == {'si__00': [0]} and report['n_unconverged_scf'] == 1


def test_vasp_mock_frames_match_plugin(vasp_run, si_structure):
    assert vasp_run.is_finished_ok, vasp_run.exit_message  # frames were produced
    (calc,) = [n for n in vasp_run.called_descendants if isinstance(n, orm.CalcJobNode)]
    incar = calc.inputs.parameters.get_dict()
    assert incar['encut'] == 300 and incar['ibrion'] == 0 and incar['ispin'] == 1  # the nafepo4 preset's
    trajectory = calc.outputs.trajectory
    frames = vasp_run.outputs.training_set.get_frameset()
    # 5 recorded ionic steps, a frame every 2: steps 0, 2, 4, less step 0 whose SCF stopped at NELM; the energy is
    # sigma->0, not the free energy
    iterations, nelm = recorded_scf_steps()
    steps = [step for step in (0, 2, 4) if iterations[step] < nelm]
    energies = trajectory.get_array('energy_extrapolated')
    assert frames.n_frames == len(steps) == 2
    np.testing.assert_allclose(frames.energy, energies[steps])
    assert not np.allclose(energies, trajectory.get_array('energy_free'), rtol=0, atol=1e-6)
    # independently of aiida-vasp: OUTCAR's `energy(sigma->0)` of each ionic step
    outcar = (MOCK / 'registry' / 'si_md' / 'out' / 'OUTCAR').read_text().splitlines()
    e_0 = [float(line.split()[-1]) for line in outcar if line.strip().startswith('energy  without entropy=')]
    np.testing.assert_allclose(frames.energy, np.array(e_0)[steps], atol=1e-6)
    np.testing.assert_allclose(frames.forces.reshape(len(steps), 1, 3), trajectory.get_array('forces')[steps])
    np.testing.assert_allclose(frames.cells, trajectory.get_array('cells')[steps])
    assert {m['source_uuid'] for m in frames.metadata} == {calc.uuid}
    # vasprun.xml positions are fractional: each frame's are in Å, with that step's cell.
    fractional, cells = trajectory.get_array('positions')[steps, 0], trajectory.get_array('cells')[steps]
    cartesian = np.einsum('sj,sjk->sk', fractional, cells)
    np.testing.assert_allclose(frames.positions, cartesian, atol=1e-6)
    assert frames.has_stress.all()
    stress = trajectory.get_array('stress')[steps][:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]  # kbar, VASP sign
    np.testing.assert_allclose(frames.stress, -stress * units.KBAR_TO_EV_PER_A3)
    assert {m['composition'] for m in frames.metadata} == {'Si'}

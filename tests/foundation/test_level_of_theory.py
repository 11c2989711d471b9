"""Level of theory of training sets: built from the engines' settings, compared on the energy-relevant keys, recorded
by LabelWorkChain, carried through merges, and mixed levels refused before anything is stored."""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from plumpy import ProcessState

from aiida_glassml.calcfunctions.training_set import append_training_set, merge_training_sets, run_merge_training_sets
from aiida_glassml.data import TrainingSetData
from aiida_glassml.labeling import level_of_theory as lot
from aiida_glassml.labeling.level_of_theory import LevelOfTheoryError
from aiida_glassml.workflows.label import LabelWorkChain, collect_training_set, level_of_theory_for
from aiida_glassml.workflows.training_set import MergeTrainingSetsWorkChain

CP2K_MD_STOPPED = pathlib.Path(__file__).parents[1] / 'labeling' / 'data' / 'cp2k_md_stopped'
NAPO = ['Na', 'O', 'P']


def cp2k(protocol='fast', elements=NAPO, **overrides):
    return lot.cp2k_level(LabelWorkChain.get_protocol_inputs(protocol, overrides, engine='cp2k'), elements)


def vasp(protocol='balanced', elements=('Fe', 'Na', 'O', 'P'), **overrides):
    return lot.vasp_level(LabelWorkChain.get_protocol_inputs(protocol, overrides, engine='vasp'), elements, 'PBE.54')


def make_set(seed: int, level: dict | None, n_frames: int = 2) -> TrainingSetData:
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(n_frames):
        atoms = Atoms('NaPO2', positions=rng.random((4, 3)) * 5, cell=[5, 5, 5], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0 - index, forces=rng.normal(size=(4, 3)))
        frames.append(atoms)
    return TrainingSetData.from_atoms(frames, level_of_theory=level).store()


# ------------------------------------------------------------------------------------------------ pure
def test_cp2k_level_from_protocol_settings():
    level = cp2k('fast')
    assert level['engine'] == 'cp2k' and level['functional'] == 'PBE'
    assert level['cutoff'] == {'cutoff_ry': 400.0, 'rel_cutoff_ry': 40.0}
    assert level['basis_sets'] == {'Na': 'SZV-MOLOPT-SR-GTH-q9', 'O': 'SZV-MOLOPT-GTH-q6', 'P': 'SZV-MOLOPT-GTH-q5'}
    assert level['pseudopotentials'] == {'Na': 'GTH-PBE-q9', 'O': 'GTH-PBE-q6', 'P': 'GTH-PBE-q5'}
    assert level['hubbard_u'] == {'Na': 0.0, 'O': 0.0, 'P': 0.0}
    assert cp2k('balanced')['spin'] == 'UKS'
    hybrid = cp2k('balanced', cp2k={'hybrid': {'fraction': 0.25, 'cutoff_radius': 4.0}})['functional']
    assert hybrid == {'base': 'PBE', 'hf_fraction': 0.25, 'truncation_radius': 4.0,
                      'long_range_correction': 'PBE_HOLE_T_C_LR'}


def test_compare_names_energy_relevant_differences():
    assert lot.compare_levels(cp2k('fast'), cp2k('fast')) == []
    differences = lot.compare_levels(cp2k('fast'), cp2k('balanced'))
    assert "cutoff.cutoff_ry: 400.0 vs 500.0" in differences
    assert "basis_sets[Na]: 'SZV-MOLOPT-SR-GTH-q9' vs 'DZVP-MOLOPT-SR-GTH-q9'" in differences
    assert any(d.startswith('spin:') for d in differences)
    between_codes = lot.compare_levels(cp2k('balanced'), vasp())
    assert "engine: 'cp2k' vs 'vasp'" in between_codes
    assert "hubbard_u[Na]: 0.0 vs 0.0" not in between_codes
    assert lot.compare_levels(vasp(), vasp(vasp={'hubbard_u': {'Fe': 4.0}})) == ['hubbard_u[Fe]: 5.3 vs 4.0']
    # the NaFePO4 study's non-spin-polarised preset and the spin-polarised option are different levels
    assert lot.compare_levels(vasp(), vasp(vasp={'preset': 'nafepo4_spin'})) == [
        "spin: 'none (ISPIN 1)' vs 'collinear (ISPIN 2)'"]
    assert vasp()['energy'].startswith('sigma->0') and vasp()['precision'] == 'Normal'


def test_per_element_maps_compare_common_elements_and_code_is_not_compared():
    # Na-P-O and Na-Fe-P-O at the same settings are one level of theory; U(Fe) differs only where Fe is.
    assert lot.compare_levels(vasp(elements=NAPO), vasp()) == []
    # no Fe, so the preset's U(Fe) changes nothing
    assert lot.compare_levels(vasp(elements=NAPO), vasp(elements=NAPO, vasp={'hubbard_u': {}})) == []
    assert vasp()['hubbard_u'] == {'Fe': 5.3, 'Na': 0.0, 'O': 0.0, 'P': 0.0}
    assert vasp()['pseudopotentials'] == {'Fe': 'Fe', 'Na': 'Na_pv', 'O': 'O', 'P': 'P'}
    a, b = cp2k('fast'), cp2k('fast')
    a['code'] = {'label': 'cp2k@hpc', 'version': 2023.1}
    b['code'] = {'label': 'cp2k@laptop', 'version': 2024.2}
    assert lot.compare_levels(a, b) == []
    teacher = lot.potential_level('ace', 'uuid-1', label='nafepo4 v1')
    assert lot.compare_levels(teacher, lot.potential_level('ace', 'uuid-1', label='renamed')) == []
    assert lot.compare_levels(teacher, lot.potential_level('ace', 'uuid-2')) == ["potential_uuid: 'uuid-1' vs 'uuid-2'"]


def test_unknown_and_mixed_levels():
    assert lot.compare_levels(None, None) == []
    (message,) = lot.compare_levels(None, cp2k())
    assert 'unknown (imported without `level_of_theory`)' in message
    assert lot.combine_levels({'a': None, 'b': None}) is None
    with pytest.raises(LevelOfTheoryError, match=r'b vs a|a vs b') as excinfo:
        lot.combine_levels({'a': None, 'b': cp2k()})
    assert 'level_of_theory={...}' in str(excinfo.value) and '--level-of-theory' in str(excinfo.value)
    mixed = lot.combine_levels({'a': cp2k('fast'), 'b': vasp()}, allow_mixed=True)
    assert mixed == {'mixed': True, 'levels': [cp2k('fast'), vasp()]}
    assert lot.compare_levels(mixed, cp2k('fast')) != []  # a mixed set never passes as one level


def test_validate_level():
    with pytest.raises(LevelOfTheoryError, match='needs an `engine`'):
        lot.validate_level({'functional': 'PBE'})
    with pytest.raises(LevelOfTheoryError, match='must be a dict'):
        lot.validate_level('PBE')
    with pytest.raises(LevelOfTheoryError, match='JSON-serialisable'):
        lot.validate_level({'engine': 'vasp', 'cutoff': object()})


# ------------------------------------------------------------------------------------------------ merges
def test_merge_refuses_different_levels_and_stores_nothing(aiida_profile, node_count):
    a, b = make_set(1, cp2k('fast')), make_set(2, cp2k('balanced'))
    before = node_count()
    for attempt in (
        lambda: merge_training_sets(a=a, b=b),
        lambda: append_training_set(a, b),
        lambda: run_merge_training_sets(a, b),
        lambda: run(MergeTrainingSetsWorkChain, training_sets={'a': a, 'b': b}),
    ):
        with pytest.raises(ValueError, match=r'refusing to merge .*cutoff\.cutoff_ry: 400\.0 vs 500\.0.*allow_mixed'):
            attempt()
    assert node_count() == before


def test_allowed_merge_records_every_level(aiida_profile):
    a, b = make_set(3, cp2k('fast')), make_set(4, vasp())
    merged = run_merge_training_sets(a, b, allow_mixed_levels=True)['training_set']
    assert merged.n_frames == 4
    assert merged.level_of_theory == {'mixed': True, 'levels': [a.level_of_theory, b.level_of_theory]}
    direct = merge_training_sets(a=a, b=b, allow_mixed_levels=orm.Bool(True))['training_set']
    assert direct.level_of_theory == merged.level_of_theory
    # A mixed set is refused against anything else unless allowed again.
    with pytest.raises(LevelOfTheoryError, match='already mixes levels'):
        run_merge_training_sets(merged, make_set(5, cp2k('fast')))
    node = run(MergeTrainingSetsWorkChain, training_sets={'a': a, 'b': b}, allow_mixed_levels=orm.Bool(True))
    assert node['training_set'].level_of_theory['mixed'] is True


def test_compatible_merge_keeps_the_common_level(aiida_profile):
    napo, nafepo = make_set(6, vasp(elements=NAPO)), make_set(7, vasp())
    merged = append_training_set(napo, nafepo)['training_set']
    assert merged.level_of_theory['hubbard_u'] == {'Fe': 5.3, 'Na': 0.0, 'O': 0.0, 'P': 0.0}
    assert merged.level_of_theory['pseudopotentials']['Fe'] == 'Fe'
    unknown = run_merge_training_sets(make_set(8, None), make_set(9, None))['training_set']
    assert unknown.level_of_theory is None


# ------------------------------------------------------------------------------------------------ import
def test_import_records_the_given_level(tmp_path, aiida_profile, node_count):
    from click.testing import CliRunner

    from aiida_glassml.cli import cli

    path = tmp_path / 'set.extxyz'
    make_set(10, None).export(path)
    level = {'engine': 'vasp', 'functional': 'PBE+U', 'hubbard_u': {'Fe': 5.1}}
    assert TrainingSetData.from_file(path, level_of_theory=level).level_of_theory == level
    assert TrainingSetData.from_file(path).level_of_theory is None
    runner = CliRunner()
    result = runner.invoke(cli, ['data', 'import', 'training-set', str(path), '--label', 'vasp-import',
                                 '--level-of-theory', json.dumps(level)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert 'level of theory: vasp' in result.output
    assert orm.load_node(result.output.split('<')[1].split('>')[0]).level_of_theory == level
    before = node_count()
    args = ['data', 'import', 'training-set', str(path), '--level-of-theory']
    bad = runner.invoke(cli, [*args, '{"functional": "PBE"}'])
    assert bad.exit_code == 1 and 'needs an `engine`' in bad.output
    bad = runner.invoke(cli, [*args, 'PBE'])
    assert bad.exit_code == 1 and 'not valid JSON' in bad.output
    assert node_count() == before


# ------------------------------------------------------------------------------------------------ LabelWorkChain
def test_cp2k_collect_sets_the_level(aiida_localhost):
    """collect_training_set records the level LabelWorkChain derives from its settings (CP2K, not run: the recorded
    output of a stopped CP2K MD stands in for the CalcJob)."""
    from aiida_glassml.workflows.dft_base import Cp2kCalculation

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/usr/bin/cp2k', label='cp2k-lot').store()
    settings = LabelWorkChain.get_protocol_inputs('fast', engine='cp2k')
    structure = orm.StructureData(ase=Atoms('Na4P4O12', positions=np.random.default_rng(0).random((20, 3)) * 6.6,
                                            cell=[6.6] * 3, pbc=True))  # fmt: skip
    files = {p.name: p.read_text() for p in CP2K_MD_STOPPED.iterdir()}
    calc = _cp2k_calcjob(aiida_localhost, Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE, files, version=2023.1)
    level = level_of_theory_for('cp2k', settings, [structure], code, calcs=[calc])
    assert level == {**cp2k('fast'), 'code': level['code']}
    assert level['code']['label'] == code.full_label and level['code']['version'] == 2023.1
    assert level['code']['plugin'].startswith('aiida-cp2k ')
    plan = {
        'engine': 'cp2k', 'mode': 'aimd', 'failed_workchains': {}, 'settings': settings, 'level_of_theory': level,
        'calculations': {'napo3__00': {'structure': 'napo3', 'order': 0, 'pk': calc.pk, 'uuid': calc.uuid,
                                       'exit_status': calc.exit_status, 'exit_message': calc.exit_message,
                                       'finished_ok': False, 'sources': ['retrieved']}},
    }  # fmt: skip
    results = collect_training_set(plan=orm.Dict(plan), napo3__00__retrieved=calc.outputs.retrieved)
    assert results['training_set'].n_frames == 2
    assert results['training_set'].level_of_theory == level
    assert results['report']['level_of_theory'] == level


def _cp2k_calcjob(computer, exit_code, files: dict[str, str], version: float):
    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:cp2k')
    node.set_option('resources', {'num_machines': 1})
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_code.status)
    node.set_exit_message(exit_code.message)
    node.store()
    retrieved = orm.FolderData()
    for name, content in files.items():
        retrieved.base.repository.put_object_from_filelike(io.BytesIO(content.encode()), name)
    for label, output in {'retrieved': retrieved, 'output_parameters': orm.Dict({'cp2k_version': version})}.items():
        output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
        output.store()
    return node


def test_fit_split_keeps_the_level(aiida_profile):
    from aiida_glassml.workflows.fit_ace import split_training_set

    dataset = make_set(11, cp2k('fast'), n_frames=6)
    split = split_training_set(dataset, orm.Float(0.34), orm.Int(1))
    assert split['train'].n_frames + split['test'].n_frames == 6
    assert split['train'].level_of_theory == split['test'].level_of_theory == dataset.level_of_theory

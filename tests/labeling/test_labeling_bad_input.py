"""Bad input to labelling: a clear error naming problem and fix, raised before anything is stored."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.engine import run

from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.labeling import cp2k as cp2k_labeling
from aiida_glassml.labeling import validation
from aiida_glassml.protocols import ProtocolError
from aiida_glassml.workflows.label import LabelWorkChain


@pytest.fixture
def code(aiida_localhost):
    return orm.InstalledCode(computer=aiida_localhost, filepath_executable='/usr/bin/cp2k', label='cp2k-bad').store()


@pytest.mark.parametrize(
    ('kwargs', 'error', 'message'),
    [
        ({'protocol': 'quick'}, ProtocolError, 'unknown protocol `quick`; choose one of fast, balanced, nafepo4_aimd, nvp_thesis, stringent'),
        ({'overrides': {'aimd': {'temprature': 300}}}, ProtocolError, 'unknown override key `aimd.temprature`'),
        ({'overrides': {'cp2k': {'cutof': 300}}}, ProtocolError, 'unknown override key `cp2k.cutof`'),
        ({'overrides': {'aimd': {'temperature': 0}}}, LabelingInputError, 'temperature must be above 0 K'),
        ({'overrides': {'aimd': {'temperature': -300.0}}}, LabelingInputError, 'set `aimd.temperature`'),
        ({'overrides': {'aimd': {'steps': 10, 'sample_every': 20}}}, LabelingInputError,
         'sampling interval (20 steps = 40 fs) is longer than the run (10 steps = 20 fs)'),
        ({'engine': 'siesta'}, LabelingInputError, 'unknown engine `siesta`; choose one of cp2k, qe, vasp'),
        ({'mode': 'relax'}, LabelingInputError, 'unknown mode `relax`'),
        ({'overrides': {'cp2k': {'basis': 'TZVP'}}}, LabelingInputError,
         'no TZVP-MOLOPT basis set with a matching GTH-PBE pseudopotential for Na'),
    ],
)  # fmt: skip
def test_bad_builder_input(code, node_count, napo3_structure, kwargs, error, message):
    structures = {'napo3': napo3_structure}
    before = node_count()
    with pytest.raises(error) as excinfo:
        LabelWorkChain.get_builder_from_protocol(code, structures, **{'engine': 'cp2k', 'mode': 'aimd', **kwargs})
    assert message in str(excinfo.value)
    assert node_count() == before


def test_element_without_basis(code, node_count):
    from ase import Atoms

    structures = {'ceo': orm.StructureData(ase=Atoms('CeO', positions=[[0, 0, 0], [2, 0, 0]], cell=[6, 6, 6], pbc=True))}
    before = node_count()
    with pytest.raises(LabelingInputError, match='DZVP-MOLOPT basis set with a matching GTH-PBE pseudopotential for Ce'):
        LabelWorkChain.get_builder_from_protocol(code, structures, engine='cp2k', mode='single_point')
    assert node_count() == before


def test_missing_cp2k_data_dir():
    with pytest.raises(LabelingInputError, match='install cp2k-data'):
        cp2k_labeling.select_basis_and_potential(['Na'], data_dir='/nonexistent')


def test_no_structures(code, node_count):
    before = node_count()
    with pytest.raises(LabelingInputError, match='no structures to label'):
        LabelWorkChain.get_builder_from_protocol(code, {}, engine='cp2k')
    assert node_count() == before


def test_spec_validator_rejects_bad_settings_before_storing(code, node_count, napo3_structure):
    """Launching without the builder: the work chain's input validator catches the same errors, nothing stored."""
    settings = LabelWorkChain.get_protocol_inputs('fast', engine='cp2k')
    settings['aimd']['temperature'] = 0.0
    inputs = {
        'engine': orm.Str('cp2k'), 'mode': orm.Str('aimd'), 'code': code, 'settings': orm.Dict(settings),
        'structures': {'napo3': napo3_structure.clone()},
    }  # fmt: skip
    before = node_count()
    with pytest.raises(ValueError, match='temperature must be above 0 K'):
        run(LabelWorkChain, **inputs)
    assert node_count() == before


def test_validate_aimd_accepts_paper_settings():
    validation.validate_aimd({'temperature': 5000, 'timestep': 2, 'steps': 100, 'sample_every': 20})


def _direct_inputs(code, structures, **settings_overrides):
    settings = LabelWorkChain.get_protocol_inputs('fast', engine='cp2k')
    for block, values in settings_overrides.items():
        settings[block].update(values)
    return {
        'engine': orm.Str('cp2k'), 'mode': orm.Str('single_point'), 'code': code, 'settings': orm.Dict(settings),
        'structures': {label: s.clone() for label, s in structures.items()},
    }  # fmt: skip


def test_spec_validator_rejects_misspelled_settings_key(code, node_count, napo3_structure):
    inputs = _direct_inputs(code, {'napo3': napo3_structure}, cp2k={'cutof': 300})
    before = node_count()
    with pytest.raises(ValueError, match=r'`settings`: unknown override key `cp2k.cutof`.*label_cp2k.yaml'):
        run(LabelWorkChain, **inputs)
    assert node_count() == before


def test_spec_validator_rejects_uncovered_element(code, node_count, napo3_structure):
    from ase import Atoms

    ceo = orm.StructureData(ase=Atoms('CeO', positions=[[0, 0, 0], [2, 0, 0]], cell=[6, 6, 6], pbc=True))
    inputs = _direct_inputs(code, {'napo3': napo3_structure, 'ceo': ceo})
    before = node_count()
    with pytest.raises(ValueError, match='basis set with a matching GTH-PBE pseudopotential for Ce'):
        run(LabelWorkChain, **inputs)
    assert node_count() == before

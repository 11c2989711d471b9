"""The VASP side of the Bader charges: LCHARG and the CHGCAR retrieved when `bader.enabled`, Z_val from the POTCARs
of the family (the dummy family of the tests: ZVAL 1.111 in every header)."""

from __future__ import annotations

import pytest
from aiida import orm

from aiida_glassml.labeling import LabelingInputError, vasp
from aiida_glassml.workflows.label import LabelWorkChain, child_inputs, potcar_valences

from .conftest import napo3_atoms


def test_potcar_zval():
    assert vasp.potcar_zval('   POMASS =   22.990; ZVAL   =    7.000    mass and valenz\n') == 7.0
    with pytest.raises(LabelingInputError, match='has no ZVAL'):
        vasp.potcar_zval('PAW_PBE Na_pv 19Sep2006\n')


def test_vasp_single_point_writes_and_retrieves_chgcar(aiida_profile, python_code, nafepo4_potcar_family):
    structure = orm.StructureData(ase=napo3_atoms())
    settings = LabelWorkChain.get_protocol_inputs('fast', {'bader': {'enabled': True}}, engine='vasp')
    _, inputs = child_inputs('vasp', 'single_point', python_code, structure, settings, nafepo4_potcar_family)
    assert inputs['parameters'].get_dict()['incar']['lcharg'] is True
    assert inputs['settings'].get_dict()['ADDITIONAL_RETRIEVE_LIST'] == [vasp.CHGCAR_FILE]
    # without Bader charges: no density written
    plain = LabelWorkChain.get_protocol_inputs('fast', engine='vasp')
    _, inputs = child_inputs('vasp', 'single_point', python_code, structure, plain, nafepo4_potcar_family)
    assert inputs['parameters'].get_dict()['incar']['lcharg'] is False
    assert 'ADDITIONAL_RETRIEVE_LIST' not in inputs['settings'].get_dict()
    assert potcar_valences(nafepo4_potcar_family, ['Na', 'P', 'O'], settings['vasp']) == {
        'Na': 1.111, 'P': 1.111, 'O': 1.111,
    }

"""VASP inputs of the NaFePO4 and Na3V2(PO4)3 protocols (regression), and VASP bad input."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm

from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.labeling import vasp
from aiida_glassml.workflows.label import LabelWorkChain

NAFEPO4 = ['Na'] * 4 + ['Fe'] * 4 + ['P'] * 4 + ['O'] * 16  # 28 atoms, 4 formula units
NA3V2PO43 = ['Na'] * 6 + ['V'] * 4 + ['P'] * 6 + ['O'] * 24  # 40 atoms, 2 formula units


def _settings(protocol='balanced', overrides=None):
    return LabelWorkChain.get_protocol_inputs(protocol, overrides, engine='vasp')


def test_nafepo4_incar_kpoints_potcar(file_regression, data_regression):
    settings = _settings()
    incar = vasp.build_incar(NAFEPO4, settings['vasp'], 'aimd', settings['aimd'])
    assert incar['encut'] == 520
    assert incar['ediff'] == pytest.approx(1e-5 * 28)
    assert incar['ldautype'] == 2 and incar['ldauu'] == [0.0, 5.1, 0.0, 0.0]  # species order Na Fe P O
    assert incar['magmom'] == [0.6] * 4 + [5.0] * 4 + [0.6] * 20
    assert incar['tebeg'] == incar['teend'] == 5000.0 and incar['potim'] == 2.0
    text = vasp.render_incar(incar) + '---- KPOINTS\n' + vasp.gamma_kpoints_text()
    file_regression.check(text, basename='vasp_nafepo4_incar_kpoints', extension='.txt')
    data_regression.check(
        {'potential_mapping': vasp.potential_mapping(NAFEPO4, settings['vasp']),
         'single_point_incar': vasp.build_incar(NAFEPO4, settings['vasp'], 'single_point')},
        basename='vasp_nafepo4_potcar_single_point',
    )  # fmt: skip


def test_na3v2po43_preset():
    settings = _settings(overrides={'vasp': {'preset': 'na3v2po43'}})
    incar = vasp.build_incar(NA3V2PO43, settings['vasp'], 'single_point')
    assert incar['encut'] == 400
    assert incar['ldauu'] == [0.0, 4.2, 0.0, 0.0]
    assert incar['magmom'][6:10] == [2.0] * 4 and min(incar['magmom']) > 0  # ferromagnetic start
    assert incar['ediff'] == pytest.approx(4e-4)
    assert vasp.potential_mapping(NA3V2PO43, settings['vasp'])['V'] == 'V_pv'


def test_override_wins_over_preset():
    settings = _settings(overrides={'vasp': {'encut': 600, 'hubbard_u': {'Fe': 5.3}}})
    incar = vasp.build_incar(NAFEPO4, settings['vasp'], 'single_point')
    assert incar['encut'] == 600 and incar['ldauu'][1] == 5.3


def test_vasp_bad_input(aiida_localhost, node_count):
    from ase import Atoms

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='vasp-fake').store()
    structure = orm.StructureData(ase=Atoms('NaFeO', positions=[[0, 0, 0], [2, 0, 0], [0, 2, 0]], cell=[6] * 3, pbc=True))
    before = node_count()
    with pytest.raises(LabelingInputError, match='needs `potential_family`'):
        LabelWorkChain.get_builder_from_protocol(code, [structure], engine='vasp', mode='single_point')
    with pytest.raises(LabelingInputError, match='POTCAR family `PBE.54` is not uploaded'):
        LabelWorkChain.get_builder_from_protocol(code, [structure], engine='vasp', potential_family='PBE.54')
    with pytest.raises(LabelingInputError, match='unknown VASP preset `nafepo`'):
        vasp.build_incar(['Na'], {'preset': 'nafepo', 'encut': None}, 'single_point')
    assert node_count() == before


def test_potcar_family_missing_element():
    with pytest.raises(LabelingInputError, match=r'has no POTCAR for Fe \(Fe_pv\)'):
        vasp.check_potcar_family(['Na', 'Fe', 'O'], 'PBE.54', {}, available=['Na_pv', 'O'])
    with pytest.raises(LabelingInputError, match='no POTCAR choice for Xe'):
        vasp.potential_mapping(['Xe'], {})


def test_site_moments_from_misc():
    misc = {'site_magnetization': {'sphere': {'x': {'site_moment': {
        '1': {'s': 0.0, 'd': 3.7, 'tot': 3.75}, '2': {'s': 0.01, 'tot': 0.02},
    }}}}}  # fmt: skip
    assert vasp.site_moments_from_misc(misc, 2).tolist() == [3.75, 0.02]
    assert vasp.site_moments_from_misc(misc, 3) is None  # a site missing: no partial moments
    assert vasp.site_moments_from_misc({}, 2) is None


def test_outcar_magnetization_per_ionic_step():
    """Every ionic step's ``magnetization (x)`` table (not ``total charge``), the ``tot`` column whatever the orbital
    columns; the table a killed run cut off (step 4) is dropped."""
    import pathlib

    outcar = (pathlib.Path(__file__).parent / 'data' / 'vasp_outcar_magnetization.txt').read_text()
    moments = vasp.parse_outcar_magnetizations(outcar)
    assert [m.tolist() for m in moments] == [[3.741, -0.001, 0.143], [3.722, -0.001, 0.156], [3.226, -0.001, 0.358]]
    frames = vasp.frames_from_vasp_arrays(
        ['Fe', 'Na', 'O'], np.zeros((4, 3, 3)), np.tile(np.eye(3), (4, 1, 1)), np.zeros(4), np.zeros((4, 3, 3)),
        magmoms=np.array(moments),
    )  # fmt: skip
    assert [f['magmoms'][0] if f['magmoms'] is not None else None for f in frames] == [3.741, 3.722, 3.226, None]
    assert vasp.parse_outcar_magnetizations('magnetization (x)\n\n# of ion s tot\n---\n    1  0.1  0.2\n') == []

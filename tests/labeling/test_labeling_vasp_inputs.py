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
CELL = np.diag([9.0, 7.0, 5.0])


def _settings(protocol='balanced', overrides=None):
    return LabelWorkChain.get_protocol_inputs(protocol, overrides, engine='vasp')


def test_nafepo4_incar_kpoints_potcar(file_regression, data_regression):
    """The default preset is the published study's: ISPIN 1, PREC Normal, U(Fe) 5.3 eV, LASPH, POTCAR Fe."""
    settings = _settings()
    incar = vasp.build_incar(NAFEPO4, settings['vasp'], 'aimd', settings['aimd'], cell=CELL)
    assert incar['encut'] == 520 and incar['prec'] == 'Normal' and incar['ispin'] == 1 and incar['lasph'] is True
    assert 'magmom' not in incar and 'lorbit' not in incar
    assert incar['ediff'] == pytest.approx(1e-5 * 28)
    assert incar['ldautype'] == 2 and incar['ldauu'] == [0.0, 5.3, 0.0, 0.0]  # species order Na Fe P O
    assert incar['ldaul'] == [-1, 2, -1, -1] and incar['lmaxmix'] == 4
    assert incar['tebeg'] == incar['teend'] == 5000.0 and incar['potim'] == 2.0 and incar['isif'] == 2
    text = vasp.render_incar(incar) + '---- KPOINTS\n' + vasp.gamma_kpoints_text()
    file_regression.check(text, basename='vasp_nafepo4_incar_kpoints', extension='.txt')
    data_regression.check(
        {'potential_mapping': vasp.potential_mapping(NAFEPO4, settings['vasp']),
         'single_point_incar': vasp.build_incar(NAFEPO4, settings['vasp'], 'single_point')},
        basename='vasp_nafepo4_potcar_single_point',
    )  # fmt: skip
    assert vasp.potential_mapping(NAFEPO4, settings['vasp']) == {'Fe': 'Fe', 'Na': 'Na_pv', 'O': 'O', 'P': 'P'}


def test_nafepo4_spin_preset():
    """The spin-polarised option differs from the study's preset in ISPIN and MAGMOM only."""
    default = vasp.build_incar(NAFEPO4, _settings()['vasp'], 'single_point')
    spin = vasp.build_incar(NAFEPO4, _settings(overrides={'vasp': {'preset': 'nafepo4_spin'}})['vasp'], 'single_point')
    assert spin['ispin'] == 2 and spin['lorbit'] == 11 and spin['magmom'] == [0.6] * 4 + [5.0] * 4 + [0.6] * 20
    assert {k: v for k, v in spin.items() if k not in ('ispin', 'lorbit', 'magmom')} == {
        k: v for k, v in default.items() if k != 'ispin'
    }
    # `nafepo4` with ISPIN 2 (as a recipe may override it) is the same as `nafepo4_spin`
    assert vasp.build_incar(NAFEPO4, _settings(overrides={'vasp': {'ispin': 2}})['vasp'], 'single_point') == spin


def test_na3v2po43_preset():
    settings = _settings(overrides={'vasp': {'preset': 'na3v2po43'}})
    incar = vasp.build_incar(NA3V2PO43, settings['vasp'], 'single_point')
    assert incar['encut'] == 400 and incar['prec'] == 'Accurate' and incar['ispin'] == 2 and 'lasph' not in incar
    assert incar['ldauu'] == [0.0, 4.2, 0.0, 0.0]
    assert incar['magmom'][6:10] == [2.0] * 4 and min(incar['magmom']) > 0  # ferromagnetic start
    assert incar['ediff'] == pytest.approx(4e-4)
    assert vasp.potential_mapping(NA3V2PO43, settings['vasp'])['V'] == 'V_pv'


def test_override_wins_over_preset():
    settings = _settings(overrides={'vasp': {'encut': 600, 'hubbard_u': {'Fe': 4.0}, 'prec': 'Accurate',
                                              'potcars': {'Na': 'Na_sv'}}})  # fmt: skip
    incar = vasp.build_incar(NAFEPO4, settings['vasp'], 'single_point')
    assert incar['encut'] == 600 and incar['ldauu'][1] == 4.0 and incar['prec'] == 'Accurate'
    # potcars merge per element: the override's Na and the preset's Fe
    assert vasp.potential_mapping(NAFEPO4, settings['vasp']) == {'Fe': 'Fe', 'Na': 'Na_sv', 'O': 'O', 'P': 'P'}


def test_interleaved_species_per_run_and_sort_order():
    """aiida-vasp writes one POSCAR/POTCAR species per run of equal kinds: per-species tags follow the runs, and the
    stable grouping puts kinds in order of first appearance, atoms of a kind in their order."""
    kinds = ['O', 'Fe', 'Na', 'O', 'P', 'Fe', 'O', 'Na']
    assert vasp.poscar_species(kinds) == kinds  # no two equal neighbours: 8 runs
    settings = _settings(overrides={'vasp': {'preset': 'nafepo4_spin'}})['vasp']
    incar = vasp.build_incar(kinds, settings, 'single_point')
    assert incar['ldauu'] == [0.0, 5.3, 0.0, 0.0, 0.0, 5.3, 0.0, 0.0] and len(incar['ldaul']) == 8
    order = vasp.species_sort_order(kinds)
    assert order == [0, 3, 6, 1, 5, 2, 7, 4]
    grouped = [kinds[i] for i in order]
    assert vasp.poscar_species(grouped) == ['O', 'Fe', 'Na', 'P']
    incar = vasp.build_incar(grouped, settings, 'single_point')
    assert incar['ldauu'] == [0.0, 5.3, 0.0, 0.0] and incar['magmom'] == [0.6] * 3 + [5.0] * 2 + [0.6] * 3
    # kind names: Fe2 and Fe3 are two POTCAR species of one element; U and MAGMOM by kind name, then element
    kinds = ['Fe2', 'Fe2', 'Fe3', 'O', 'O']
    magmom = {'Fe3': 4.0, 'Fe': 5.0}
    incar = vasp.build_incar(['Fe', 'Fe', 'Fe', 'O', 'O'], {**settings, 'magmom': magmom}, 'single_point', kinds=kinds)
    assert incar['ldauu'] == [5.3, 5.3, 0.0] and incar['ldaul'] == [2, 2, -1]
    assert incar['magmom'] == [5.0, 5.0, 4.0, 0.6, 0.6]


def test_forces_map_back_to_the_original_order():
    """Per-atom results of the grouped structure come back in the caller's atom order."""
    symbols = ['O', 'Fe', 'Na', 'O', 'P', 'Fe']
    order = vasp.species_sort_order(symbols)
    rng = np.random.default_rng(3)
    positions, forces = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 3))  # two steps, original order
    moments = rng.normal(size=(2, 6))
    frames = vasp.frames_from_vasp_arrays(
        [symbols[i] for i in order], positions[:, order], np.tile(np.eye(3) * 8, (2, 1, 1)), np.zeros(2),
        forces[:, order], magmoms=moments[:, order], atom_order=order,
    )  # fmt: skip
    for step, frame in enumerate(frames):
        assert frame['symbols'] == symbols
        np.testing.assert_array_equal(frame['forces'], forces[step])
        np.testing.assert_array_equal(frame['positions'], positions[step])
        np.testing.assert_array_equal(frame['magmoms'], moments[step])
    assert vasp.restore_atom_order([10, 20], None) == [10, 20]
    with pytest.raises(LabelingInputError, match='3 per-atom values for 2 atoms'):
        vasp.restore_atom_order([1, 2, 3], [1, 0])


def test_smass_from_thermostat_timecon():
    """SMASS honours ``aimd.thermostat_timecon`` (the period of the Nosé oscillation): VASP's own frequency formula
    (OUTCAR's "period in steps") gives the period back; VASP's SMASS = 0 is the mass for 40 steps."""
    n_atoms, temperature, length = 28, 5000.0, 9.0
    smass = vasp.nose_smass(50.0, 2.0, temperature, n_atoms, length)
    assert vasp.nose_period_fs(smass, temperature, n_atoms, length) == pytest.approx(50.0)
    assert vasp.nose_smass(100.0, 2.0, temperature, n_atoms, length) == pytest.approx(4 * smass)  # Q ∝ period²
    # independent of VASP's constants: Q = 2 N_f k_B T (period / 2π)² in SI, SMASS = Q / (amu Å²)
    q_si = 2 * (3 * n_atoms - 3) * 1.380649e-23 * temperature * (50e-15 / (2 * np.pi)) ** 2
    assert smass == pytest.approx(q_si / (1.66053907e-27 * (length * 1e-10) ** 2), rel=1e-5)
    settings = _settings()
    incar = vasp.build_incar(NAFEPO4, settings['vasp'], 'aimd', settings['aimd'], cell=CELL)
    assert incar['smass'] == pytest.approx(smass, rel=1e-5)  # protocol: 50 fs at 5000 K, a = 9 Å
    longer = vasp.build_incar(NAFEPO4, settings['vasp'], 'aimd', {**settings['aimd'], 'thermostat_timecon': 100.0},
                              cell=CELL)  # fmt: skip
    assert longer['smass'] == pytest.approx(4 * smass, rel=1e-5)
    default = vasp.build_incar(NAFEPO4, settings['vasp'], 'aimd', {**settings['aimd'], 'thermostat_timecon': None})
    assert default['smass'] == 0  # VASP's own: a period of 40 time steps
    with pytest.raises(LabelingInputError, match='shorter than two time steps'):
        vasp.build_incar(NAFEPO4, settings['vasp'], 'aimd', {**settings['aimd'], 'thermostat_timecon': 3.0}, cell=CELL)
    with pytest.raises(LabelingInputError, match='needs the cell'):
        vasp.build_incar(NAFEPO4, settings['vasp'], 'aimd', settings['aimd'])


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


def test_vasp_frames_map_back_through_the_calcjob_settings(aiida_localhost):
    """``_vasp_frames`` reads the grouping from the CalcJob's ``settings`` (``glassml_atom_order``, what
    ``_vasp_child_inputs`` records) and returns forces, positions and symbols in the caller's order, with the σ→0
    energy."""
    from aiida.common.links import LinkType

    from aiida_glassml.workflows.label import _vasp_frames

    symbols = ['O', 'Fe', 'Na', 'O', 'P', 'Fe']
    order = vasp.species_sort_order(symbols)
    rng = np.random.default_rng(5)
    cell = np.eye(3) * 8.0
    fractional, forces = rng.uniform(size=(3, 6, 3)), rng.normal(size=(3, 6, 3))  # three steps, original order
    calc = orm.CalcJobNode(computer=aiida_localhost, process_type='aiida.calculations:vasp.vasp')
    calc.set_option('resources', {'num_machines': 1})
    calc.base.links.add_incoming(orm.Dict({'glassml_atom_order': order}).store(), LinkType.INPUT_CALC, 'settings')
    calc.store()
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory([symbols[i] for i in order], fractional[:, order], cells=np.tile(cell, (3, 1, 1)))
    trajectory.set_array('forces', forces[:, order])
    trajectory.set_array('energy_extrapolated', np.array([-1.0, -2.0, -3.0]))
    trajectory.set_array('energy_free', np.array([-1.1, -2.1, -3.1]))
    trajectory.base.links.add_incoming(calc, LinkType.CREATE, 'trajectory')
    trajectory.store()
    frames = _vasp_frames({'trajectory': trajectory}, 'aimd', {})
    assert [f['energy'] for f in frames] == [-1.0, -2.0, -3.0]
    for step, frame in enumerate(frames):
        assert frame['symbols'] == symbols
        np.testing.assert_allclose(frame['forces'], forces[step])
        np.testing.assert_allclose(frame['positions'], fractional[step] @ cell)

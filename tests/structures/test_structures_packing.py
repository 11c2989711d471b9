"""Random packing, density and strained copies (pure layer), with hypothesis properties over random compositions."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiida_glassml.structures import (
    Composition,
    StructureGenerationError,
    estimate_density,
    generate_random_structure,
    min_distance_violations,
    random_packing,
    strain,
)
from aiida_glassml.structures.density import DENSITY_SOURCE, END_MEMBER_DENSITIES
from aiida_glassml.structures.packing import cubic_cell

UNIT_SETS = (
    ('Na2O', 'FeO', 'P2O5'),
    ('NaO0.5', 'FeO', 'PO2.5'),
    ('Na2S', 'P2S5', 'P2O5'),
    ('Na2O', 'V2O5', 'VO2', 'P2O5'),
)
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


@st.composite
def compositions(draw):
    units = draw(st.sampled_from(UNIT_SETS))
    weights = draw(st.lists(st.integers(0, 10), min_size=len(units), max_size=len(units)).filter(any))
    fractions = [w / sum(weights) for w in weights]
    states = None
    if units[2] == 'VO2' and fractions[1] + fractions[2] > 0:  # the V4+/V5+ split that V2O5 + VO2 imply
        vanadium = 2 * fractions[1] + fractions[2]
        states = {'V': {'5': 2 * fractions[1] / vanadium, '4': fractions[2] / vanadium}}
    return Composition.from_units(units, fractions, states)


def density_of(atoms) -> float:
    return atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    composition=compositions(),
    n_atoms=st.integers(80, 160),
    density=st.floats(2.0, 3.5),
    seed=st.integers(0, 2**31),
)
def test_random_structures_are_neutral_spaced_dense_and_reproducible(composition, n_atoms, density, seed):
    settings = {'n_atoms': n_atoms, 'density': density}
    generated = generate_random_structure(composition, seed, settings)
    atoms = generated.atoms
    assert sum(atoms.get_initial_charges()) == 0
    assert generated.formula.net_charge == 0
    assert min_distance_violations(atoms, 1.7) == []
    assert density_of(atoms) == pytest.approx(density, rel=0.005)
    again = generate_random_structure(composition, seed, settings).atoms
    assert again.get_chemical_symbols() == atoms.get_chemical_symbols()
    np.testing.assert_array_equal(again.positions, atoms.positions)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_pair_overrides_hold_under_periodic_images(seed):
    symbols = ['Na'] * 20 + ['P'] * 10 + ['O'] * 40
    pairs = {'P-P': 3.0, 'Na-O': 2.2}
    positions = random_packing(symbols, cubic_cell(900.0), seed, 1.6, pairs)
    from ase import Atoms

    atoms = Atoms(symbols, positions=positions, cell=cubic_cell(900.0), pbc=True)
    assert min_distance_violations(atoms, 1.6, pairs) == []
    distances = atoms.get_all_distances(mic=True)
    phosphorus, sodium, oxygen = (np.array(atoms.get_chemical_symbols()) == e for e in ('P', 'Na', 'O'))
    assert distances[np.ix_(phosphorus, phosphorus)][~np.eye(10, dtype=bool)].min() >= 3.0
    assert distances[np.ix_(sodium, oxygen)].min() >= 2.2


def test_different_seeds_give_different_structures():
    composition = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])
    first = generate_random_structure(composition, 1, {'n_atoms': 98, 'density': 3.38}).atoms
    second = generate_random_structure(composition, 2, {'n_atoms': 98, 'density': 3.38}).atoms
    assert not np.allclose(first.positions, second.positions)


def test_given_cell_keeps_its_shape_and_sets_the_density_when_none_is_given():
    composition = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])
    generated = generate_random_structure(composition, 3, {'n_atoms': 98, 'cell': [10, 10, 12]})
    assert generated.density_source == 'cell'
    np.testing.assert_allclose(generated.atoms.cell.lengths(), [10, 10, 12])
    assert density_of(generated.atoms) == pytest.approx(generated.density)
    scaled = generate_random_structure(composition, 3, {'n_atoms': 98, 'cell': [10, 10, 12], 'density': 3.38})
    lengths = scaled.atoms.cell.lengths()
    assert lengths[2] / lengths[0] == pytest.approx(1.2)
    assert density_of(scaled.atoms) == pytest.approx(3.38)


def test_density_estimate_is_offline_documented_and_recorded():
    nafepo4 = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])
    estimate = estimate_density(nafepo4)
    # Crystal end members: within 10% of the 3.38 g/cm3 NaFePO4 glass, low because P4O10 is a molecular crystal.
    assert 3.38 * 0.9 < estimate < 3.38
    generated = generate_random_structure(nafepo4, 1, {'n_atoms': 98})
    assert generated.density == pytest.approx(estimate)
    assert generated.density_source == DENSITY_SOURCE and 'CRC Handbook' in DENSITY_SOURCE
    assert density_of(generated.atoms) == pytest.approx(estimate, rel=0.005)
    sulfide = Composition.from_units(['Na2S', 'P2S5'], [0.75, 0.25])
    assert 1.8 < estimate_density(sulfide) < 2.1  # between Na2S (1.86) and P2S5 (2.09)
    assert ('V', 4, 'O') in END_MEMBER_DENSITIES


def test_density_estimate_without_coefficients_asks_for_a_density():
    composition = Composition.from_units(['V2S5', 'Na2S'], [0.5, 0.5])
    with pytest.raises(StructureGenerationError, match='no end-member molar volume for V\\+5 with S.*give the density'):
        estimate_density(composition)


def test_strained_copies_scale_lengths_and_keep_fractional_positions():
    composition = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])
    atoms = generate_random_structure(composition, 1, {'n_atoms': 98, 'density': 3.38}).atoms
    copies = strain(atoms, (0.8, 1.0, 1.2))
    assert list(copies) == ['strain_0_80', 'strain_1_00', 'strain_1_20']
    for factor, copy in zip((0.8, 1.0, 1.2), copies.values()):
        np.testing.assert_allclose(copy.cell.lengths(), atoms.cell.lengths() * factor)
        np.testing.assert_allclose(copy.get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-12)
        assert density_of(copy) == pytest.approx(3.38 / factor**3)
    with pytest.raises(StructureGenerationError, match='must be > 0'):
        strain(atoms, (0.8, -1.0))


def test_density_zero_or_negative_is_rejected():
    composition = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])
    for density in (0, -3.38):
        with pytest.raises(StructureGenerationError, match='must be > 0'):
            generate_random_structure(composition, 1, {'n_atoms': 98, 'density': density})


def test_infeasible_packing_fails_fast_with_a_clear_error():
    composition = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])
    with pytest.raises(StructureGenerationError, match='infeasible packing.*lower the density or the minimum distance'):
        generate_random_structure(composition, 1, {'n_atoms': 98, 'density': 3.38, 'min_distance': 2.6})


def test_packing_that_stalls_stops_after_bounded_attempts():
    # Below the hard-sphere limit used for failing fast, but too dense to finish: gives up after max_attempts.
    with pytest.raises(StructureGenerationError, match='random packing failed: 2000 attempts could not place atom'):
        random_packing(['O'] * 60, cubic_cell(60 * 4 / 3 * np.pi * 1.0**3 / 0.37), 1, 2.0, max_attempts=2000)


def test_unknown_setting_is_rejected():
    composition = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])
    with pytest.raises(StructureGenerationError, match=r"unknown setting\(s\) \['atoms'\]"):
        generate_random_structure(composition, 1, {'atoms': 98})


def _unit_structure(seed=1, n_atoms=112, density=3.07, **extra):
    composition = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])
    settings = {'n_atoms': n_atoms, 'density': density, 'min_distance': 1.9, 'units_geometry': 'tetrahedra', **extra}
    return generate_random_structure(composition, seed, settings)


def test_rigid_tetrahedra_have_exact_bonds_and_keep_distances_between_units():
    generated = _unit_structure(tetrahedra={'P': 1.53})
    atoms = generated.atoms
    symbols = np.array(atoms.get_chemical_symbols())
    assert sum(atoms.get_initial_charges()) == 0
    assert atoms.get_chemical_formula() == 'Fe16Na16O64P16'
    assert density_of(atoms) == pytest.approx(3.07, rel=1e-6)
    distances = atoms.get_all_distances(mic=True)
    phosphorus, oxygen = np.flatnonzero(symbols == 'P'), np.flatnonzero(symbols == 'O')
    owner = {}  # every O belongs to exactly one P, at exactly the bond length
    for p in phosphorus:
        bonded = oxygen[np.isclose(distances[p, oxygen], 1.53, atol=1e-9)]
        assert len(bonded) == 4
        owner.update({int(o): int(p) for o in bonded})
        assert np.allclose(distances[np.ix_(bonded, bonded)][~np.eye(4, dtype=bool)], 1.53 * np.sqrt(8 / 3))
    assert len(owner) == 64
    # every pair not inside one tetrahedron keeps the minimum distance
    unit = np.arange(len(atoms))
    for o, p in owner.items():
        unit[o] = p
    for i, j, distance, required in min_distance_violations(atoms, 1.9):
        assert unit[i] == unit[j], (symbols[i], symbols[j], distance, required)
    assert generated.metadata()['units_geometry'] == 'tetrahedra'


def test_rigid_tetrahedra_are_reproducible_and_seeded():
    first, again, other = _unit_structure(seed=4).atoms, _unit_structure(seed=4).atoms, _unit_structure(seed=5).atoms
    np.testing.assert_array_equal(first.positions, again.positions)
    assert not np.allclose(first.positions, other.positions)


def test_rigid_vanadate_tetrahedra_with_mixed_formers():
    composition = Composition.from_units(['Na2O', 'P2O5', 'V2O5'], [0.75, 0.125, 0.125])  # Na3PO4-Na3VO4
    generated = generate_random_structure(composition, 2, {'n_atoms': 96, 'density': 2.6, 'min_distance': 1.8,
                                                           'units_geometry': 'tetrahedra'})  # fmt: skip
    atoms = generated.atoms
    symbols = np.array(atoms.get_chemical_symbols())
    distances = atoms.get_all_distances(mic=True)
    oxygen = np.flatnonzero(symbols == 'O')
    for element, bond in (('P', 1.54), ('V', 1.72)):
        for centre in np.flatnonzero(symbols == element):
            assert np.isclose(distances[centre, oxygen], bond, atol=1e-9).sum() == 4
    assert sum(atoms.get_initial_charges()) == 0


@pytest.mark.parametrize(('units', 'fractions', 'settings', 'message'), [
    (['Na2O', 'P2O5'], [0.5, 0.5], {}, '3.00 per former, but isolated XO4 tetrahedra need 4'),
    (['Na2O', 'FeO'], [0.5, 0.5], {}, 'has no tetrahedral former'),
    (['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25], {'units_geometry': 'octahedra'}, "units_geometry 'octahedra'"),
    (['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25], {'tetrahedra': {'P': 9.0}}, 'must be in 0.5-3.5 Å'),
    (['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25], {'density': 8.0}, 'infeasible packing'),
])  # fmt: skip
def test_rigid_unit_bad_input_fails_before_packing(units, fractions, settings, message):
    from aiida_glassml.structures import plan_random_structure

    composition = Composition.from_units(units, fractions)
    with pytest.raises(StructureGenerationError, match=message.replace('(', r'\(').replace('.', r'\.')):
        plan_random_structure(composition, 1, {'n_atoms': 100, 'density': 3.0, 'units_geometry': 'tetrahedra',
                                               **settings})  # fmt: skip

"""Compositions from formula units, oxidation states, charge balance and integer formulas (pure layer)."""

import pytest

from aiida_glassml.structures import (
    Composition,
    StructureGenerationError,
    composition_grid,
    integer_formula,
    parse_formula,
    substitute_anion,
)
from aiida_glassml.structures.composition import normalise_oxidation_states

NAFEPO4 = (['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25])


@pytest.mark.parametrize(
    ('formula', 'expected'),
    [
        ('Na2O', {'Na': 2, 'O': 1}),
        ('NaO0.5', {'Na': 1, 'O': 0.5}),
        ('PO2.5', {'P': 1, 'O': 2.5}),
        ('Na4P2S5.5O1.5', {'Na': 4, 'P': 2, 'S': 5.5, 'O': 1.5}),
        ('Fe2(SO4)3', {'Fe': 2, 'S': 3, 'O': 12}),
    ],
)
def test_parse_formula(formula, expected):
    assert parse_formula(formula) == pytest.approx(expected)


def test_fractional_units_give_the_same_elements_as_whole_units():
    whole = Composition.from_units(*NAFEPO4)
    fractional = Composition.from_units(['NaO0.5', 'FeO', 'PO2.5'], [1 / 3, 1 / 3, 1 / 3])
    assert whole.atomic_fractions == pytest.approx(fractional.atomic_fractions)
    assert whole.formula == 'Na0.5Fe0.5P0.5O2'


def test_ternary_grid_at_ten_percent_has_66_points_with_corners_and_edges():
    grid = composition_grid(['Na2O', 'FeO', 'P2O5'], 0.1)
    assert len(grid) == 66
    fractions = {tuple(round(f, 6) for f in c.fractions) for c in grid}
    assert {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.5, 0.5, 0.0)} <= fractions
    assert all(abs(sum(c.fractions) - 1) < 1e-12 for c in grid)
    assert len(composition_grid(['Na2O', 'P2O5'], 0.1)) == 11
    assert len(composition_grid(['Na2O', 'FeO', 'P2O5'], 0.1, include_edges=False)) == 36


@pytest.mark.parametrize('x', [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5])
def test_mixed_anion_series_na4p2s7_x_ox(x):
    formula = substitute_anion('Na4P2S7', 'S', 'O', x)
    composition = Composition.from_formula(formula, ['Na2S', 'P2S5', 'P2O5'])
    amounts = composition.element_amounts
    scale = 4 / amounts['Na']
    assert amounts['P'] * scale == pytest.approx(2)
    assert amounts['S'] * scale == pytest.approx(7 - x)
    assert amounts.get('O', 0) * scale == pytest.approx(x)
    assert composition.net_charge == pytest.approx(0, abs=1e-9)
    counts = integer_formula(composition, 245).element_counts
    assert counts['Na'] * 2 == counts['P'] * 4


def test_default_and_overridden_oxidation_states():
    states = normalise_oxidation_states()
    assert {e: s[0][0] for e, s in states.items()} == {'Na': 1, 'Fe': 2, 'P': 5, 'O': -2, 'S': -2, 'V': 5}
    ferric = Composition.from_units(['Na2O', 'Fe2O3', 'P2O5'], [0.25, 0.25, 0.5], {'Fe': '+3'})
    assert ferric.net_charge == pytest.approx(0)


def test_mixed_valence_vanadium_split_by_fraction():
    # VO2.4 is V(+4.8): balanced by 20% V4+ and 80% V5+.
    composition = Composition.from_units(['NaO0.5', 'VO2.4', 'PO2.5'], [0.3, 0.3, 0.4], {'V': {'4': 0.2, '5': 0.8}})
    assert composition.species_amounts[('V', 4)] == pytest.approx(0.06)
    assert composition.species_amounts[('V', 5)] == pytest.approx(0.24)
    result = integer_formula(composition, 245)
    assert result.net_charge == 0
    v4, v5 = result.species_counts[('V', 4)], result.species_counts[('V', 5)]
    assert v4 / (v4 + v5) == pytest.approx(0.2, abs=0.05)


@pytest.mark.parametrize(('n_atoms', 'expected'), [(100, 98), (245, 245), (3003, 3003)])
def test_integer_formula_is_neutral_and_reports_realised_next_to_requested(n_atoms, expected):
    result = integer_formula(Composition.from_units(*NAFEPO4), n_atoms)
    assert result.n_atoms == expected
    assert result.net_charge == 0
    assert result.element_counts['Na'] == result.element_counts['Fe'] == result.element_counts['P']
    assert result.realised_atomic_fractions == pytest.approx(result.requested_atomic_fractions)
    assert result.realised_unit_fractions == pytest.approx({'Na2O': 0.25, 'FeO': 0.5, 'P2O5': 0.25})


def test_integer_formula_of_an_irrational_composition_stays_neutral():
    composition = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [1 / 3, 1 / 3, 1 / 3])
    result = integer_formula(composition, 100)
    assert result.net_charge == 0
    assert abs(result.n_atoms - 100) <= 5
    assert 0 < result.max_deviation < 0.02
    assert result.to_dict()['requested_unit_fractions'] == pytest.approx(dict(zip(composition.units, [1 / 3] * 3)))


# Bad input: one test per case, each asserting the error type and the part of the message that names the problem.


def test_negative_fraction_is_rejected():
    with pytest.raises(StructureGenerationError, match=r'negative mole fraction.*FeO=-0\.1'):
        Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.6, -0.1, 0.5])


def test_missing_fractions_are_rejected():
    with pytest.raises(StructureGenerationError, match='no mole fractions given'):
        Composition.from_units(['Na2O', 'FeO', 'P2O5'], None)
    with pytest.raises(StructureGenerationError, match='2 fractions for 3 units'):
        Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.5, 0.5])


def test_fractions_not_summing_to_one_are_rejected():
    with pytest.raises(StructureGenerationError, match=r'sum to 1\.00001, not 1'):
        Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25001])
    # within 1e-6 is accepted
    Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.2500005])


def test_unknown_unit_is_rejected():
    with pytest.raises(StructureGenerationError, match="cannot parse formula unit 'Na2O!'"):
        Composition.from_units(['Na2O!', 'P2O5'], [0.5, 0.5])


def test_unknown_element_is_rejected():
    with pytest.raises(StructureGenerationError, match="unknown element 'Xx'"):
        Composition.from_units(['Xx2O', 'P2O5'], [0.5, 0.5])


def test_element_without_oxidation_state_is_rejected():
    with pytest.raises(StructureGenerationError, match='no oxidation state for Li'):
        Composition.from_units(['Li2O', 'P2O5'], [0.5, 0.5])


def test_non_neutral_composition_shows_the_net_charge():
    with pytest.raises(StructureGenerationError, match=r'not charge neutral: net charge \+0\.5 e'):
        Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.25, 0.5, 0.25], {'Fe': 3})


def test_too_few_atoms_to_realise_the_composition_is_rejected():
    composition = Composition.from_units(*NAFEPO4)
    with pytest.raises(StructureGenerationError, match='3 atoms are too few'):
        integer_formula(composition, 3)
    dilute = Composition.from_units(['Na2O', 'FeO', 'P2O5'], [0.01, 0.49, 0.5])
    with pytest.raises(StructureGenerationError, match='20 atoms are too few'):
        integer_formula(dilute, 20)


def test_bad_grid_step_is_rejected():
    with pytest.raises(StructureGenerationError, match='does not divide 1'):
        composition_grid(['Na2O', 'P2O5'], 0.3)

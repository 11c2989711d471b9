"""The NaFePO4 study's composition grid (NaO0.5, FeO, PO2.5 in 10 mol % steps) against the Na2O, FeO, P2O5 grid that
the docs used to show, and the shipped recipe that samples it."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from aiida_glassml.structures import Composition, composition_grid

ROOT = pathlib.Path(__file__).resolve().parents[2]
STUDY_UNITS = ['NaO0.5', 'FeO', 'PO2.5']


def _key(composition: Composition) -> tuple:
    """The composition itself (atomic fractions), whatever units wrote it."""
    return tuple(sorted((e, round(f, 9)) for e, f in composition.atomic_fractions.items() if f > 0))


def test_study_grid_and_na2o_grid_share_12_of_66_points():
    study = {_key(c) for c in composition_grid(STUDY_UNITS, 0.1)}
    na2o = {_key(c) for c in composition_grid(['Na2O', 'FeO', 'P2O5'], 0.1)}
    assert len(study) == len(na2o) == 66
    shared = study & na2o
    assert len(shared) == 12
    # the Fe-free Na-P edge (11 points: both grids put one Na or P per unit there, doubled or not) and the FeO corner
    fe_free = {k for k in shared if 'Fe' not in dict(k)}
    assert len(fe_free) == 11 and shared - fe_free == {(('Fe', 0.5), ('O', 0.5))}


def test_the_study_code_makes_the_same_grid():
    """The study's own grid: balace.yaml units (P2O5, Na2O, Fe2O2: two cations each) through vitrum's GlassGenerator,
    as vitrum.batch_active does (spacing 10)."""
    from vitrum.structure_gen import GlassGenerator

    theirs = GlassGenerator(units=['P2O5', 'Na2O', 'Fe2O2']).sample('grid', spacing=10).to_pymatgen()
    keys = {tuple(sorted((str(e), round(f, 9)) for e, f in c.fractional_composition.items())) for c in theirs}
    assert len(theirs) == 66 and keys == {_key(c) for c in composition_grid(STUDY_UNITS, 0.1)}


def test_nafepo4_recipe_samples_the_study_grid():
    recipe = yaml.safe_load((ROOT / 'workflows' / 'nafepo4.yaml').read_text())
    compositions = recipe['compositions']
    assert all(c['units'] == STUDY_UNITS for c in compositions.values())
    parsed = {label: Composition.from_dict(c) for label, c in compositions.items()}
    glass = parsed.pop('NaFePO4')
    assert glass.atomic_fractions == pytest.approx(Composition.from_formula('NaFePO4', STUDY_UNITS).atomic_fractions,
                                                   abs=1e-6)  # fmt: skip
    assert {_key(c) for c in parsed.values()} == {_key(c) for c in composition_grid(STUDY_UNITS, 0.1)}
    for label, composition in parsed.items():  # labels are mol % of the units
        assert label == 'Na{}Fe{}P{}'.format(*(round(100 * f) for f in composition.fractions))

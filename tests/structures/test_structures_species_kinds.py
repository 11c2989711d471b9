"""``species_kinds``: kinds named after the oxidation state, so that classical potentials with one species per state
(BMP and Du: V4 and V5) can run a random packing."""

from __future__ import annotations

import pytest
from aiida import orm

from aiida_glassml.structures import StructureGenerationError
from aiida_glassml.structures.generate import validate_settings

NVP = {'units': ['Na2O', 'V2O5', 'VO2', 'P2O5'], 'fractions': [0.35, 0.2, 0.1, 0.35],
       'oxidation_states': {'V': {'4': 0.2, '5': 0.8}}}  # fmt: skip


def test_kinds_follow_oxidation_states(aiida_profile):
    from aiida_glassml.calcfunctions.structures import random_structure
    from aiida_glassml.data.classical_potential import ClassicalPotentialData

    structure = random_structure(orm.Dict(NVP), orm.Int(3), orm.Dict({'n_atoms': 120, 'species_kinds': ['V']}))
    kinds = {kind.name: kind.symbol for kind in structure.kinds}
    assert kinds['V4'] == 'V' and kinds['V5'] == 'V' and 'V' not in kinds and kinds['Na'] == 'Na'
    names = [site.kind_name for site in structure.sites]
    assert names.count('V4') > 0 and names.count('V5') > names.count('V4')
    du = ClassicalPotentialData.from_library('du')
    assert du.check_covers([(kind.name, kind.symbol) for kind in structure.kinds]) == list(kinds)  # no PotentialError


def test_species_kinds_must_be_elements():
    with pytest.raises(StructureGenerationError, match=r'species_kinds .* must list elements'):
        validate_settings({'species_kinds': ['Vanadium']})

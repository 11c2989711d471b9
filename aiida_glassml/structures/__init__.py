"""Composition space and random glass structures (pure python/numpy, no AiiDA imports): formula units, oxidation
states and charge balance (:mod:`.composition`), offline density estimates (:mod:`.density`), seeded random packing
and strained copies (:mod:`.packing`), and one structure from composition + seed + settings (:mod:`.generate`)."""

from .composition import (
    DEFAULT_OXIDATION_STATES,
    Composition,
    IntegerFormula,
    StructureGenerationError,
    composition_grid,
    integer_formula,
    parse_formula,
    substitute_anion,
)
from .density import DENSITY_SOURCE, estimate_density
from .generate import (
    DEFAULT_SETTINGS,
    DEFAULT_TETRAHEDRA,
    GeneratedStructure,
    StructurePlan,
    generate_random_structure,
    pack_structure,
    plan_random_structure,
    strain,
    validate_settings,
)
from .packing import check_packing_feasible, min_distance_violations, random_packing, random_unit_packing

__all__ = (
    'DEFAULT_OXIDATION_STATES',
    'DEFAULT_SETTINGS',
    'DEFAULT_TETRAHEDRA',
    'DENSITY_SOURCE',
    'Composition',
    'GeneratedStructure',
    'IntegerFormula',
    'StructurePlan',
    'StructureGenerationError',
    'check_packing_feasible',
    'composition_grid',
    'estimate_density',
    'generate_random_structure',
    'integer_formula',
    'min_distance_violations',
    'pack_structure',
    'parse_formula',
    'plan_random_structure',
    'random_packing',
    'random_unit_packing',
    'strain',
    'substitute_anion',
    'validate_settings',
)

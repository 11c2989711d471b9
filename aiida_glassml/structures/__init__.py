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
from .generate import DEFAULT_SETTINGS, GeneratedStructure, generate_random_structure, strain, validate_settings
from .packing import min_distance_violations, random_packing

__all__ = (
    'DEFAULT_OXIDATION_STATES',
    'DEFAULT_SETTINGS',
    'DENSITY_SOURCE',
    'Composition',
    'GeneratedStructure',
    'IntegerFormula',
    'StructureGenerationError',
    'composition_grid',
    'estimate_density',
    'generate_random_structure',
    'integer_formula',
    'min_distance_violations',
    'parse_formula',
    'random_packing',
    'strain',
    'substitute_anion',
    'validate_settings',
)

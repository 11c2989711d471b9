"""One random glass structure from a composition, a seed and settings: integer formula, density, cell, packing.
Pure python, no AiiDA imports; ``aiida_glassml.calcfunctions.structures`` wraps it with provenance."""

from __future__ import annotations

import dataclasses
import math
import typing as t

import numpy as np

from .composition import Composition, IntegerFormula, StructureGenerationError, integer_formula
from .density import cell_volume, molar_mass, resolve_density
from .packing import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MIN_DISTANCE,
    _validate_cell,
    cubic_cell,
    pair_cutoff_matrix,
    random_packing,
    strain_key,
    strained_copy,
    validate_strain_factors,
)

__all__ = ('DEFAULT_SETTINGS', 'GeneratedStructure', 'generate_random_structure', 'validate_settings', 'strain')

#: Settings of :func:`generate_random_structure` (the ``settings`` Dict of the calcfunctions).
DEFAULT_SETTINGS: dict[str, t.Any] = {
    'n_atoms': 100,  # target atom count; the realised count is the closest neutral formula
    'density': None,  # g/cm3; None: the offline estimate (or the given cell's volume)
    'cell': None,  # None: cubic; three lengths or a 3x3 matrix: its shape, scaled to the density if one is given
    'min_distance': DEFAULT_MIN_DISTANCE,  # Å between any two atoms
    'pair_min_distances': {},  # per-pair overrides, e.g. {'Na-O': 2.0}
    'max_attempts': DEFAULT_MAX_ATTEMPTS,  # trials for one atom before the packing is declared infeasible
    'composition_tolerance': 0.02,  # largest allowed deviation of a realised atomic fraction
    'strains': [0.8, 1.0, 1.2],  # cell-length factors of strained_copies
}


def validate_settings(settings: t.Mapping | None) -> dict:
    """Merge ``settings`` into :data:`DEFAULT_SETTINGS`, rejecting unknown keys and bad values."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise StructureGenerationError(f'unknown setting(s) {unknown}; allowed: {", ".join(DEFAULT_SETTINGS)}.')
    merged = {**DEFAULT_SETTINGS, **settings}
    n_atoms = merged['n_atoms']
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, (int, np.integer)) or n_atoms < 1:
        raise StructureGenerationError(f'n_atoms {n_atoms!r} must be a positive integer, e.g. 100 or 3003.')
    if merged['density'] is not None:
        value = merged['density']
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise StructureGenerationError(f'density {value!r} g/cm3 must be > 0; give e.g. 3.38, or omit it to estimate.')
    if merged['cell'] is not None:
        merged['cell'] = _validate_cell(merged['cell']).tolist()
    tolerance = merged['composition_tolerance']
    if not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise StructureGenerationError(f'composition_tolerance {tolerance!r} must be > 0, e.g. 0.02.')
    merged['strains'] = list(validate_strain_factors(merged['strains']))
    pair_cutoff_matrix([], merged['min_distance'], merged['pair_min_distances'])  # validates values and names
    return merged


def validate_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise StructureGenerationError(f'seed {seed!r} must be an integer >= 0, e.g. 1.')
    return int(seed)


@dataclasses.dataclass
class GeneratedStructure:
    """A packed structure (ASE ``Atoms``) and everything that defines it."""

    atoms: t.Any
    composition: Composition
    formula: IntegerFormula
    density: float
    density_source: str
    seed: int
    settings: dict

    def metadata(self) -> dict:
        """JSON-friendly record of how the structure was made (stored as node attributes and extxyz info)."""
        return {
            'composition': self.composition.to_dict(),
            'composition_label': self.composition.label,
            'integer_formula': self.formula.to_dict(),
            'seed': self.seed,
            'density': self.density,
            'density_source': self.density_source,
            'min_distance': self.settings['min_distance'],
            'pair_min_distances': dict(self.settings['pair_min_distances']),
        }


def generate_random_structure(composition, seed: int, settings: t.Mapping | None = None) -> GeneratedStructure:
    """Pack the closest neutral integer formula of ``composition`` (a :class:`Composition` or its dict) with about
    ``settings['n_atoms']`` atoms at the requested or estimated density. Same inputs, same structure."""
    from ase import Atoms

    if not isinstance(composition, Composition):
        composition = Composition.from_dict(composition)
    seed = validate_seed(seed)
    settings = validate_settings(settings)
    formula = integer_formula(composition, settings['n_atoms'], tolerance=settings['composition_tolerance'])
    symbols = formula.symbols()
    mass = molar_mass(formula.element_counts)
    if settings['cell'] is not None and settings['density'] is None:
        cell = np.array(settings['cell'])
        density, source = cell_volume(mass, 1.0) / abs(np.linalg.det(cell)), 'cell'
    else:
        density, source = resolve_density(composition, settings['density'])
        volume = cell_volume(mass, density)
        if settings['cell'] is None:
            cell = cubic_cell(volume)
        else:
            shape = np.array(settings['cell'])
            cell = shape * (volume / abs(np.linalg.det(shape))) ** (1 / 3)
    positions = random_packing(
        symbols, cell, seed, settings['min_distance'], settings['pair_min_distances'], settings['max_attempts']
    )
    atoms = Atoms(symbols, positions=positions, cell=cell, pbc=True)
    atoms.set_initial_charges(formula.oxidation_state_per_atom())
    result = GeneratedStructure(atoms, composition, formula, float(density), source, seed, settings)
    atoms.info.update(_flatten_info(result.metadata()))
    return result


def _flatten_info(metadata: dict) -> dict:
    """extxyz info values must be scalars or arrays: nested dicts become JSON strings."""
    import json

    return {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v) for k, v in metadata.items()}


def strain(atoms, factors=(0.8, 1.0, 1.2)) -> dict:
    """``{'strain_0_80': atoms scaled by 0.8, ...}``: isotropic copies with every cell length scaled by a factor."""
    copies = {}
    for factor in validate_strain_factors(factors):
        copy = strained_copy(atoms, factor)
        copy.info['strain_factor'] = factor
        copies[strain_key(factor)] = copy
    return copies

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
    check_packing_feasible,
    random_packing,
    random_unit_packing,
    strain_key,
    strained_copy,
    validate_strain_factors,
)

__all__ = (
    'DEFAULT_SETTINGS',
    'DEFAULT_TETRAHEDRA',
    'GeneratedStructure',
    'StructurePlan',
    'generate_random_structure',
    'pack_structure',
    'plan_random_structure',
    'strain',
    'validate_settings',
)

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
    # None: every atom placed singly; 'tetrahedra': each network former (an element of `tetrahedra` with a positive
    # oxidation state) packed as a rigid, randomly oriented X(ligand)4 tetrahedron, the other atoms singly
    'units_geometry': None,
    'tetrahedra': None,  # former -> former-ligand bond length (Å); None: DEFAULT_TETRAHEDRA
    'ligand': 'O',  # the corner atom of the tetrahedra
    # elements whose structure kinds are named after the oxidation state (V -> kinds V4, V5), for classical potentials
    # with one species per oxidation state (bmp, du)
    'species_kinds': [],
}

#: Former-oxygen bond lengths (Å) of isolated tetrahedra: PO4 1.54 (orthophosphates), SO4 1.47 (sulfates), VO4 1.72
#: (orthovanadates), SiO4 1.62 (orthosilicates), typical crystal values.
DEFAULT_TETRAHEDRA = {'P': 1.54, 'S': 1.47, 'V': 1.72, 'Si': 1.62}
UNITS_GEOMETRIES = (None, 'tetrahedra')


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
    if merged['units_geometry'] not in UNITS_GEOMETRIES:
        raise StructureGenerationError(
            f'units_geometry {merged["units_geometry"]!r} is unknown; use null (single atoms) or tetrahedra.'
        )
    if merged['units_geometry'] is None and (merged['tetrahedra'] is not None or merged['ligand'] != 'O'):
        raise StructureGenerationError('tetrahedra and ligand apply only with units_geometry: tetrahedra; set it too.')
    tetrahedra = DEFAULT_TETRAHEDRA if merged['tetrahedra'] is None else merged['tetrahedra']
    if not isinstance(tetrahedra, t.Mapping) or not tetrahedra:
        raise StructureGenerationError(f'tetrahedra {tetrahedra!r} must map former elements to bond lengths, e.g. '
                                       '{"P": 1.54}.')  # fmt: skip
    from ase.data import chemical_symbols

    for element, length in tetrahedra.items():
        if element not in chemical_symbols[1:]:
            raise StructureGenerationError(f'unknown element {element!r} in tetrahedra; use e.g. {{"P": 1.54}}.')
        if isinstance(length, bool) or not isinstance(length, (int, float)) or not 0.5 <= length <= 3.5:
            raise StructureGenerationError(f'tetrahedra bond length {element}: {length!r} must be in 0.5-3.5 Å, '
                                           'e.g. 1.54 for P-O.')  # fmt: skip
    if merged['ligand'] not in chemical_symbols[1:]:
        raise StructureGenerationError(f'unknown ligand element {merged["ligand"]!r}; use e.g. O.')
    species_kinds = merged['species_kinds'] or []
    if not isinstance(species_kinds, (list, tuple)) or any(e not in chemical_symbols[1:] for e in species_kinds):
        raise StructureGenerationError(f'species_kinds {species_kinds!r} must list elements, e.g. [V].')
    merged['species_kinds'] = [str(e) for e in species_kinds]
    if merged['units_geometry'] is not None:
        merged['tetrahedra'] = {str(k): float(v) for k, v in tetrahedra.items()}
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
        metadata = {
            'composition': self.composition.to_dict(),
            'composition_label': self.composition.label,
            'integer_formula': self.formula.to_dict(),
            'seed': self.seed,
            'density': self.density,
            'density_source': self.density_source,
            'min_distance': self.settings['min_distance'],
            'pair_min_distances': dict(self.settings['pair_min_distances']),
        }
        if self.settings.get('units_geometry'):
            metadata.update({'units_geometry': self.settings['units_geometry'], 'ligand': self.settings['ligand'],
                             'tetrahedra': dict(self.settings['tetrahedra'])})  # fmt: skip
        return metadata


@dataclasses.dataclass
class StructurePlan:
    """Everything a packing needs, resolved and checked cheaply (no packing): formula, density, cell, rigid units."""

    composition: Composition
    formula: IntegerFormula
    density: float
    density_source: str
    cell: np.ndarray
    seed: int
    settings: dict
    units: list  # [(atom indices, local Cartesian geometry)] of rigid units; empty: single atoms only

    @property
    def symbols(self) -> list[str]:
        return self.formula.symbols()


def plan_random_structure(composition, seed: int, settings: t.Mapping | None = None) -> StructurePlan:
    """Validate and resolve a random structure without packing it: composition, neutral integer formula, density,
    cell, rigid units, and the fast feasibility checks of the packing. Raises StructureGenerationError on any bad
    input; cheap (milliseconds for 3003 atoms), so callers can check every grid point before storing anything."""
    if not isinstance(composition, Composition):
        composition = Composition.from_dict(composition)
    seed = validate_seed(seed)
    settings = validate_settings(settings)
    formula = integer_formula(composition, settings['n_atoms'], tolerance=settings['composition_tolerance'])
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
    units = _tetrahedral_units(formula, settings) if settings['units_geometry'] == 'tetrahedra' else []
    symbols = formula.symbols()
    excluded = np.zeros(len(symbols), dtype=bool)
    cap = None
    if units:
        excluded[[indices[0] for indices, _ in units]] = True  # a former sits inside its ligands
        shortest = min(settings['tetrahedra'][symbols[indices[0]]] for indices, _ in units)
        cap = {settings['ligand']: shortest * math.sqrt(8 / 3)}  # ligand-ligand edge of the tetrahedron
    check_packing_feasible(symbols, cell, settings['min_distance'], settings['pair_min_distances'], excluded, cap)
    return StructurePlan(composition, formula, float(density), source, cell, seed, settings, units)


def _tetrahedral_units(formula: IntegerFormula, settings: dict) -> list:
    """Rigid X(ligand)4 units: every atom of a former element with a positive oxidation state takes four ligands."""
    tetrahedra, ligand = settings['tetrahedra'], settings['ligand']
    species = [sp for sp, count in formula.species_counts.items() for _ in range(count)]
    formers = [i for i, (element, state) in enumerate(species) if element in tetrahedra and state > 0]
    ligands = [i for i, (element, _) in enumerate(species) if element == ligand]
    if not formers:
        raise StructureGenerationError(
            f'units_geometry tetrahedra: {formula.formula} has no tetrahedral former (one of '
            f'{", ".join(tetrahedra)} with a positive oxidation state); add it to `tetrahedra` or pack single atoms '
            '(units_geometry: null).'
        )
    if len(ligands) < 4 * len(formers):
        raise StructureGenerationError(
            f'units_geometry tetrahedra: {formula.formula} has {len(ligands)} {ligand} for {len(formers)} formers, '
            f'{len(ligands) / len(formers):.2f} per former, but isolated X{ligand}4 tetrahedra need 4: the composition '
            f'needs corner-sharing units. Use a composition with at least 4 {ligand} per former (e.g. an '
            'orthophosphate), or pack single atoms (units_geometry: null).'
        )
    corners = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / math.sqrt(3)
    units = []
    for k, former in enumerate(formers):
        geometry = np.vstack([np.zeros(3), corners * tetrahedra[species[former][0]]])
        units.append(([former, *ligands[4 * k : 4 * k + 4]], geometry))
    return units


def pack_structure(plan: StructurePlan) -> GeneratedStructure:
    """Pack a checked plan (the expensive part). Raises StructureGenerationError when the packing stalls."""
    from ase import Atoms

    settings = plan.settings
    if plan.units:
        positions = random_unit_packing(plan.symbols, plan.units, plan.cell, plan.seed, settings['min_distance'],
                                        settings['pair_min_distances'], settings['max_attempts'])  # fmt: skip
    else:
        positions = random_packing(plan.symbols, plan.cell, plan.seed, settings['min_distance'],
                                   settings['pair_min_distances'], settings['max_attempts'])  # fmt: skip
    atoms = Atoms(plan.symbols, positions=positions, cell=plan.cell, pbc=True)
    atoms.set_initial_charges(plan.formula.oxidation_state_per_atom())
    result = GeneratedStructure(atoms, plan.composition, plan.formula, plan.density, plan.density_source, plan.seed,
                                settings)  # fmt: skip
    atoms.info.update(_flatten_info(result.metadata()))
    return result


def generate_random_structure(composition, seed: int, settings: t.Mapping | None = None) -> GeneratedStructure:
    """Pack the closest neutral integer formula of ``composition`` (a :class:`Composition` or its dict) with about
    ``settings['n_atoms']`` atoms at the requested or estimated density. Same inputs, same structure."""
    return pack_structure(plan_random_structure(composition, seed, settings))


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

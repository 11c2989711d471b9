"""Seeded random packing of atoms in a periodic cell with minimum distances, and isotropically strained copies.
Pure numpy, no AiiDA imports.

Packing is random sequential addition: atoms are inserted one at a time (in a seeded random order) at uniform random
points, and a point is accepted when it keeps the minimum distance to every atom already placed, under periodic
images. Candidate neighbours come from a cell list (bins at least as wide as the largest cutoff), so each trial costs
O(1); trials are checked in vectorised batches that grow while atoms are hard to place. Attempts are bounded: a
dense combination of density and minimum distance fails fast when the hard-sphere packing fraction exceeds the
random-sequential-addition jamming limit, and otherwise after ``max_attempts`` rejected trials for one atom.
"""

from __future__ import annotations

import itertools
import math
import typing as t

import numpy as np

from .composition import StructureGenerationError

__all__ = (
    'DEFAULT_MIN_DISTANCE',
    'RSA_JAMMING_LIMIT',
    'check_packing_feasible',
    'cubic_cell',
    'pair_cutoff_matrix',
    'random_packing',
    'random_unit_packing',
    'min_distance_violations',
    'strain_key',
    'strained_copy',
    'validate_strain_factors',
)

DEFAULT_MIN_DISTANCE = 1.7  # Å
#: Random sequential addition of equal spheres jams at this packing fraction in 3D (Torquato, Uche, Stillinger,
#: Phys. Rev. E 74 (2006) 061308: 0.38278); denser requests cannot be packed this way.
RSA_JAMMING_LIMIT = 0.38278
DEFAULT_MAX_ATTEMPTS = 100_000  # trials for one atom before giving up


def cubic_cell(volume: float) -> np.ndarray:
    """3x3 cell (rows are lattice vectors, Å) of a cube with ``volume`` Å^3."""
    return np.eye(3) * volume ** (1 / 3)


def _pair_key(key) -> tuple[str, str]:
    if isinstance(key, str):
        parts = key.replace(' ', '').split('-')
    else:
        parts = list(key)
    if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
        raise StructureGenerationError(f'pair {key!r} is not of the form `Na-O`; name two elements joined by `-`.')
    return parts[0], parts[1]


def pair_cutoff_matrix(
    elements: t.Sequence[str], min_distance: float = DEFAULT_MIN_DISTANCE, pair_min_distances: t.Mapping | None = None
) -> np.ndarray:
    """Symmetric matrix of minimum distances (Å) between ``elements``: ``min_distance`` unless overridden by
    ``pair_min_distances`` such as ``{'Na-O': 2.0, 'P-P': 2.8}``."""
    from ase.data import chemical_symbols

    if not (isinstance(min_distance, (int, float)) and math.isfinite(min_distance) and min_distance >= 0):
        raise StructureGenerationError(f'minimum distance {min_distance!r} Å must be a number >= 0, e.g. 1.7.')
    index = {e: i for i, e in enumerate(elements)}
    matrix = np.full((len(elements), len(elements)), float(min_distance))
    for key, value in (pair_min_distances or {}).items():
        first, second = _pair_key(key)
        for element in (first, second):
            if element not in chemical_symbols[1:]:
                raise StructureGenerationError(f'unknown element {element!r} in pair distance {key!r}; use e.g. Na-O.')
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise StructureGenerationError(f'pair distance {key}={value!r} must be a number >= 0 (Å), e.g. 2.0.')
        if first in index and second in index:
            matrix[index[first], index[second]] = matrix[index[second], index[first]] = float(value)
    return matrix


def _widths(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (Å)."""
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])


def _validate_cell(cell) -> np.ndarray:
    try:
        cell = np.array(cell, dtype=float)
    except (TypeError, ValueError):
        raise StructureGenerationError(f'cell {cell!r} is not numeric; give a 3x3 matrix or three lengths (Å).') from None
    if cell.shape == (3,):
        if not (cell > 0).all():
            raise StructureGenerationError(f'cell lengths {cell.tolist()} must be > 0 Å, e.g. 14,14,16.')
        cell = np.diag(cell)
    if cell.shape != (3, 3) or not np.isfinite(cell).all() or abs(np.linalg.det(cell)) < 1e-9:
        raise StructureGenerationError(
            f'cell must be three lengths or a 3x3 matrix of lattice vectors with non-zero volume, got {cell.tolist()}.'
        )
    if np.linalg.det(cell) < 0:  # LAMMPS and most DFT codes need a right-handed cell
        raise StructureGenerationError(
            f'cell {cell.tolist()} is left-handed (negative determinant); swap two lattice vectors or flip the sign '
            'of one to make it right-handed.'
        )
    return cell


def random_packing(
    symbols: t.Sequence[str],
    cell,
    seed: int,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    pair_min_distances: t.Mapping | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> np.ndarray:
    """Cartesian positions (Å), in the order of ``symbols``, placed at random in the periodic ``cell`` with every
    pair at least its minimum distance apart under periodic images. Same ``seed``, same positions.

    Raises :class:`StructureGenerationError` when the request is denser than random packing allows.
    """
    cell = _validate_cell(cell)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise StructureGenerationError(f'seed {seed!r} must be an integer >= 0.')
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, (int, np.integer)) or max_attempts < 1:
        raise StructureGenerationError(f'max_attempts {max_attempts!r} must be a positive integer, e.g. 100000.')
    elements = list(dict.fromkeys(symbols))
    types = np.array([elements.index(s) for s in symbols], dtype=np.int64)
    cutoffs = pair_cutoff_matrix(elements, min_distance, pair_min_distances)
    cutoffs_sq = cutoffs**2
    n_atoms = len(symbols)
    volume = abs(np.linalg.det(cell))
    _check_feasible(symbols, elements, types, cutoffs, cell, volume)

    rng = np.random.default_rng(seed)
    rmax = float(cutoffs.max())
    widths = _widths(cell)
    if rmax == 0:
        return rng.random((n_atoms, 3)) @ cell
    nbins = np.maximum(1, np.floor(widths / rmax)).astype(np.int64)
    reach = np.ceil(rmax * nbins / widths - 1e-12).astype(np.int64)
    offsets = np.array(list(itertools.product(*(range(-r, r + 1) for r in reach))), dtype=np.int64)
    n_bins_total = int(np.prod(nbins))
    capacity = 4
    table = np.full((n_bins_total, capacity), -1, dtype=np.int64)
    fill = np.zeros(n_bins_total, dtype=np.int64)
    # Index -1 (an empty table slot) reads the extra last row: a dummy atom whose pair distance to anything is 0.
    fractional = np.zeros((n_atoms + 1, 3))
    placed_types = np.full(n_atoms + 1, len(elements), dtype=np.int64)
    cutoffs_sq = np.hstack([cutoffs_sq, np.zeros((len(elements), 1))])
    strides = np.array([nbins[1] * nbins[2], nbins[2], 1], dtype=np.int64)

    order = rng.permutation(n_atoms)
    for count, atom in enumerate(order):
        row = cutoffs_sq[types[atom]]
        attempts, batch, key = 0, 1, None
        while key is None:
            if attempts >= max_attempts:
                raise StructureGenerationError(
                    f'random packing failed: {max_attempts} attempts could not place atom {count + 1} of {n_atoms} '
                    f'({symbols[atom]}) in a {volume:.1f} Å^3 cell with the minimum distances '
                    f'{_describe_cutoffs(elements, cutoffs)}; the density and minimum distance cannot both be met: '
                    'lower the density or the minimum distance.'
                )
            if batch == 1:  # most atoms fit within a few trials: cheapest checked one at a time
                trial = rng.random(3)
                attempts += 1
                home = np.minimum((trial * nbins).astype(np.int64), nbins - 1)
                around = home + offsets
                image = np.floor_divide(around, nbins)
                neighbours = table[(around - image * nbins) @ strides]
                delta = (trial - fractional[neighbours] - image[:, None, :]) @ cell
                if ((delta * delta).sum(axis=-1) < row[placed_types[neighbours]]).any():
                    batch = 64 if attempts >= 16 else 1
                    continue
                key = int(home @ strides)
                break
            # hard to place: check many trials at once
            size = min(batch, max_attempts - attempts)
            trials = rng.random((size, 3))
            attempts += size
            home = np.minimum((trials * nbins).astype(np.int64), nbins - 1)
            around = home[:, None, :] + offsets[None, :, :]
            image = np.floor_divide(around, nbins)
            neighbours = table[(around - image * nbins) @ strides]  # (trials, bins, capacity)
            delta = (trials[:, None, None, :] - fractional[neighbours] - image[:, :, None, :]) @ cell
            clash = ((delta * delta).sum(axis=-1) < row[placed_types[neighbours]]).any(axis=(1, 2))
            free = np.flatnonzero(~clash)
            if free.size == 0:
                batch = min(2 * batch, 1024)
                continue
            trial, key = trials[free[0]], int(home[free[0]] @ strides)
        if fill[key] == capacity:
            table = np.concatenate([table, np.full_like(table, -1)], axis=1)
            capacity *= 2
        table[key, fill[key]] = atom
        fill[key] += 1
        fractional[atom] = trial
        placed_types[atom] = types[atom]
    return fractional[:n_atoms] @ cell


def _describe_cutoffs(elements, cutoffs) -> str:
    values = {f'{a}-{b}': cutoffs[i, j] for i, a in enumerate(elements) for j, b in enumerate(elements) if j >= i}
    if len(set(values.values())) == 1:
        return f'{next(iter(values.values())):g} Å'
    return ', '.join(f'{k} {v:g} Å' for k, v in values.items())


def check_packing_feasible(symbols: t.Sequence[str], cell, min_distance: float = DEFAULT_MIN_DISTANCE,
                           pair_min_distances: t.Mapping | None = None, excluded: t.Sequence[bool] | None = None,
                           sphere_cap: t.Mapping[str, float] | None = None) -> None:  # fmt: skip
    """The cheap checks of :func:`random_packing` without packing: raise StructureGenerationError ("infeasible
    packing") when the hard-sphere packing fraction exceeds the random-packing limit or an atom cannot clear its own
    periodic image. ``excluded``: atoms left out of the sphere count (centres of rigid units, inside their ligands);
    ``sphere_cap``: largest sphere diameter per element (ligands of one rigid unit are this close)."""
    cell = _validate_cell(cell)
    elements = list(dict.fromkeys(symbols))
    types = np.array([elements.index(s) for s in symbols], dtype=np.int64)
    cutoffs = pair_cutoff_matrix(elements, min_distance, pair_min_distances)
    _check_feasible(symbols, elements, types, cutoffs, cell, abs(np.linalg.det(cell)), excluded, sphere_cap)


def _check_feasible(symbols, elements, types, cutoffs, cell, volume, excluded=None, sphere_cap=None) -> None:
    """Fail fast, before any trial, on requests that random sequential addition cannot meet."""
    # Every atom excludes at least a sphere of its smallest pair distance: a lower bound on the packing fraction.
    smallest = cutoffs.min(axis=1)
    if sphere_cap:
        smallest = np.array([min(d, sphere_cap.get(e, d)) for d, e in zip(smallest, elements)])
    counted = np.ones(len(types), dtype=bool) if excluded is None else ~np.asarray(excluded, dtype=bool)
    fraction = float(np.sum(math.pi / 6 * smallest[types[counted]] ** 3) / volume)
    if fraction > RSA_JAMMING_LIMIT:
        raise StructureGenerationError(
            f'infeasible packing: {len(symbols)} atoms with minimum distances {_describe_cutoffs(elements, cutoffs)} '
            f'in {volume:.1f} Å^3 fill a hard-sphere fraction of {fraction:.3f}, above the random-packing limit '
            f'{RSA_JAMMING_LIMIT}; the density and minimum distance cannot both be met: lower the density or the '
            'minimum distance.'
        )
    # An atom must also clear its own periodic images.
    images = np.array([n for n in itertools.product((-1, 0, 1), repeat=3) if any(n)]) @ cell
    shortest = float(np.linalg.norm(images, axis=1).min())
    present = sorted(set(types.tolist()))
    worst = max(cutoffs[i, i] for i in present)
    if len(symbols) and shortest < worst:
        raise StructureGenerationError(
            f'infeasible packing: the cell repeats every {shortest:.3f} Å, less than the minimum distance {worst:g} Å '
            'between an atom and its periodic image; use more atoms or a larger cell.'
        )


class _CellList:
    """Placed atoms binned in a periodic cell list, to test candidate points against per-pair minimum distances."""

    def __init__(self, cell: np.ndarray, cutoffs: np.ndarray, n_atoms: int):
        self.cell = cell
        self.rmax = float(cutoffs.max())
        widths = _widths(cell)
        self.nbins = np.maximum(1, np.floor(widths / max(self.rmax, 1e-9))).astype(np.int64)
        self.nbins = np.minimum(self.nbins, 64)  # enough resolution; keeps the table small for tiny cutoffs
        reach = np.ceil(self.rmax * self.nbins / widths - 1e-12).astype(np.int64)
        self.offsets = np.array(list(itertools.product(*(range(-r, r + 1) for r in reach))), dtype=np.int64)
        self.strides = np.array([self.nbins[1] * self.nbins[2], self.nbins[2], 1], dtype=np.int64)
        self.table = np.full((int(np.prod(self.nbins)), 4), -1, dtype=np.int64)
        self.fill = np.zeros(len(self.table), dtype=np.int64)
        # index -1 (an empty slot) reads the extra last row: a dummy atom at distance 0 requirement
        self.fractional = np.zeros((n_atoms + 1, 3))
        self.types = np.full(n_atoms + 1, len(cutoffs), dtype=np.int64)
        self.cutoffs_sq = np.hstack([cutoffs**2, np.zeros((len(cutoffs), 1))])

    def clashes(self, fractional: np.ndarray, types: np.ndarray) -> bool:
        if self.rmax == 0:
            return False
        home = np.minimum((fractional * self.nbins).astype(np.int64), self.nbins - 1)
        around = home[:, None, :] + self.offsets[None, :, :]
        image = np.floor_divide(around, self.nbins)
        neighbours = self.table[(around - image * self.nbins) @ self.strides]  # (points, bins, capacity)
        delta = (fractional[:, None, None, :] - self.fractional[neighbours] - image[:, :, None, :]) @ self.cell
        required = self.cutoffs_sq[types[:, None, None], self.types[neighbours]]
        return bool(((delta * delta).sum(axis=-1) < required).any())

    def add(self, indices: np.ndarray, fractional: np.ndarray, types: np.ndarray) -> None:
        keys = np.minimum((fractional * self.nbins).astype(np.int64), self.nbins - 1) @ self.strides
        for index, key in zip(indices, keys):
            if self.fill[key] == self.table.shape[1]:
                self.table = np.concatenate([self.table, np.full_like(self.table, -1)], axis=1)
            self.table[key, self.fill[key]] = index
            self.fill[key] += 1
        self.fractional[indices] = fractional
        self.types[indices] = types


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_unit_packing(
    symbols: t.Sequence[str],
    units: t.Sequence[tuple[t.Sequence[int], np.ndarray]],
    cell,
    seed: int,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    pair_min_distances: t.Mapping | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> np.ndarray:
    """Cartesian positions (Å) in the order of ``symbols``: rigid ``units`` (atom indices and their local Cartesian
    geometry, e.g. a PO4 tetrahedron) placed first at random positions and orientations, then every other atom singly.
    Atoms of different units (and single atoms) keep their pair minimum distances under periodic images; the
    geometry inside a unit is exact. Same ``seed``, same positions. Bounded: ``max_attempts`` trials per unit/atom."""
    cell = _validate_cell(cell)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise StructureGenerationError(f'seed {seed!r} must be an integer >= 0.')
    elements = list(dict.fromkeys(symbols))
    types = np.array([elements.index(s) for s in symbols], dtype=np.int64)
    cutoffs = pair_cutoff_matrix(elements, min_distance, pair_min_distances)
    inverse = np.linalg.inv(cell)
    rng = np.random.default_rng(seed)
    grid = _CellList(cell, cutoffs, len(symbols))
    in_unit = np.zeros(len(symbols), dtype=bool)
    for indices, _ in units:
        in_unit[list(indices)] = True
    singles = np.flatnonzero(~in_unit)
    placements = [(np.asarray(i, dtype=np.int64), np.asarray(g, dtype=float)) for i, g in units]
    placements = [placements[k] for k in rng.permutation(len(placements))] if placements else []
    placements += [(np.array([i]), np.zeros((1, 3))) for i in rng.permutation(singles)]
    volume = abs(np.linalg.det(cell))
    for count, (indices, geometry) in enumerate(placements):
        unit_types = types[indices]
        for _ in range(max_attempts):
            local = geometry @ random_rotation(rng).T if len(indices) > 1 else geometry
            fractional = (rng.random(3) @ cell + local) @ inverse % 1.0
            if not grid.clashes(fractional, unit_types):
                grid.add(indices, fractional, unit_types)
                break
        else:
            what = '-'.join(symbols[i] for i in indices[:2]) + ('...' if len(indices) > 2 else '')
            raise StructureGenerationError(
                f'random packing failed: {max_attempts} attempts could not place unit {count + 1} of '
                f'{len(placements)} ({what}) in a {volume:.1f} Å^3 cell with the minimum distances '
                f'{_describe_cutoffs(elements, cutoffs)}; the density and minimum distance cannot both be met: '
                'lower the density or the minimum distance.'
            )
    return grid.fractional[: len(symbols)] @ cell


def min_distance_violations(atoms, min_distance: float = DEFAULT_MIN_DISTANCE, pair_min_distances=None) -> list:
    """Pairs ``(i, j, distance, required)`` closer than their minimum distance under periodic images, found with
    ASE's neighbour list (independent of the packing code, for checks and tests)."""
    from ase.neighborlist import neighbor_list

    symbols = atoms.get_chemical_symbols()
    elements = list(dict.fromkeys(symbols))
    types = np.array([elements.index(s) for s in symbols])
    cutoffs = pair_cutoff_matrix(elements, min_distance, pair_min_distances)
    if len(atoms) == 0 or cutoffs.max() == 0:
        return []
    first, second, distance = neighbor_list('ijd', atoms, float(cutoffs.max()))
    required = cutoffs[types[first], types[second]]
    bad = (distance < required - 1e-9) & (first < second)
    return [(int(i), int(j), float(d), float(r)) for i, j, d, r in
            zip(first[bad], second[bad], distance[bad], required[bad])]  # fmt: skip


def validate_strain_factors(factors) -> tuple[float, ...]:
    """Positive, finite, distinct scale factors of the cell lengths, e.g. (0.8, 1.0, 1.2)."""
    try:
        values = tuple(float(f) for f in factors)
    except (TypeError, ValueError):
        raise StructureGenerationError(f'strain factors {factors!r} must be numbers, e.g. 0.8,1.0,1.2.') from None
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise StructureGenerationError(f'strain factors {list(values)} must be > 0, e.g. 0.8,1.0,1.2.')
    if len({strain_key(v) for v in values}) != len(values):
        raise StructureGenerationError(f'strain factors {list(values)} repeat (to 2 decimals); give distinct factors.')
    return values


def strain_key(factor: float) -> str:
    """Output name of a strained copy: 0.8 -> ``strain_0_80``."""
    return f'strain_{factor:.2f}'.replace('.', '_')


def strained_copy(atoms, factor: float):
    """Copy of ASE ``atoms`` with every cell length scaled by ``factor`` (isotropic; fractional positions kept)."""
    copy = atoms.copy()
    copy.set_cell(np.asarray(atoms.cell) * factor, scale_atoms=True)
    return copy

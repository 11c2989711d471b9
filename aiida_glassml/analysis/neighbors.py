"""Periodic neighbour lists.

Orthorhombic cells with a cutoff below half the shortest box length use ``scipy.spatial.cKDTree`` with ``boxsize``
(C speed, minimum image). Triclinic cells, or cutoffs reaching beyond the minimum image, fall back to ASE's
binned ``neighbor_list``, which returns every periodic image.

:func:`pair_distance_histogram` counts pairs per species pair and distance bin without building the pair list:
a numba cell-list kernel for orthorhombic cells, the pair list + ``bincount`` otherwise (and as the reference).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms

from .errors import AnalysisInputError, NonPeriodicCellError

__all__ = (
    'PairList', 'minimum_image', 'neighbor_pairs', 'pair_distance_histogram', 'perpendicular_widths', 'require_periodic'
)


def require_periodic(atoms: Atoms, what: str = 'this analysis') -> None:
    """Raise :class:`NonPeriodicCellError` unless ``atoms`` is periodic along all three axes with a 3D cell."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    volume = abs(np.linalg.det(np.asarray(atoms.cell))) if np.asarray(atoms.cell).any() else 0.0
    if not pbc.all() or volume < 1e-6:
        raise NonPeriodicCellError(
            f'{what} needs a cell periodic along x, y and z, but got pbc={pbc.tolist()} and cell volume '
            f'{volume:.3g} Å³; give the structure its simulation box (e.g. `atoms.set_cell(box); atoms.pbc = True`, '
            'or read it from a file that stores the cell such as a LAMMPS data file or extxyz with Lattice).'
        )


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (Å); half the smallest is the largest minimum-image radius."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)])


def _is_orthorhombic(cell: np.ndarray) -> bool:
    cell = np.asarray(cell, dtype=float)
    return bool(np.all(np.abs(cell - np.diag(np.diag(cell))) < 1e-10) and np.all(np.diag(cell) > 0))


def _wrap(positions: np.ndarray, box: np.ndarray) -> np.ndarray:
    wrapped = np.mod(positions, box)
    wrapped[wrapped >= box] = 0.0  # mod can round up to exactly box, which cKDTree rejects
    return wrapped


def minimum_image(vectors: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Minimum-image convention for difference vectors (exact for orthorhombic cells and for vectors shorter
    than half the perpendicular width in triclinic ones)."""
    cell = np.asarray(cell, dtype=float)
    frac = np.asarray(vectors, dtype=float) @ np.linalg.inv(cell)
    frac -= np.round(frac)
    return frac @ cell


@dataclasses.dataclass
class PairList:
    """Pairs within a cutoff, each unordered pair (or periodic image of one) once.

    ``vectors[k]`` points from atom ``i[k]`` to the image of ``j[k]`` at distance ``distances[k]``.
    """

    i: np.ndarray
    j: np.ndarray
    distances: np.ndarray
    vectors: np.ndarray
    n_atoms: int
    cutoff: float

    def __len__(self) -> int:
        return len(self.i)

    def select(self, mask: np.ndarray) -> PairList:
        return PairList(self.i[mask], self.j[mask], self.distances[mask], self.vectors[mask], self.n_atoms, self.cutoff)

    def both_ways(self) -> PairList:
        """Each pair in both directions (i→j and j→i), as needed for per-atom neighbour lists."""
        return PairList(
            np.concatenate([self.i, self.j]), np.concatenate([self.j, self.i]),
            np.concatenate([self.distances, self.distances]), np.concatenate([self.vectors, -self.vectors]),
            self.n_atoms, self.cutoff,
        )  # fmt: skip


def neighbor_pairs(
    atoms: Atoms, cutoff: float, positions: np.ndarray | None = None, with_vectors: bool = True
) -> PairList:
    """All pairs closer than ``cutoff`` (Å) in a periodic cell, each once (``i < j``; self-images once each).

    ``positions`` overrides ``atoms.positions`` (e.g. a frame of a trajectory array). ``with_vectors=False`` skips
    the pair vectors (``vectors`` then has shape (n, 0)), which is faster for histograms. Raises
    :class:`NonPeriodicCellError` for non-periodic structures.
    """
    require_periodic(atoms, 'a periodic neighbour list')
    cell = np.asarray(atoms.cell, dtype=float)
    positions = np.asarray(atoms.positions if positions is None else positions, dtype=float)
    n_atoms = len(positions)
    widths = perpendicular_widths(cell)
    if _is_orthorhombic(cell) and cutoff <= 0.5 * widths.min() * (1 + 1e-12):
        from scipy.spatial import cKDTree

        box = np.diag(cell).copy()
        wrapped = _wrap(positions, box)
        tree = cKDTree(wrapped, boxsize=box)
        pairs = tree.query_pairs(cutoff, output_type='ndarray')
        i, j = pairs[:, 0], pairs[:, 1]
        # per axis on contiguous columns: about 3x faster than on (n, 3) rows for millions of pairs
        components = []
        for axis in range(3):
            column = np.ascontiguousarray(wrapped[:, axis])
            delta = column[j] - column[i]
            delta -= box[axis] * np.round(delta / box[axis])
            components.append(delta)
        distances = np.sqrt(components[0] ** 2 + components[1] ** 2 + components[2] ** 2)
        keep = distances < cutoff
        if with_vectors:
            vectors = np.stack(components, axis=1)[keep]
        else:
            vectors = np.zeros((int(keep.sum()), 0))
        return PairList(i[keep], j[keep], distances[keep], vectors, n_atoms, float(cutoff))
    from ase.neighborlist import primitive_neighbor_list

    i, j, distances, vectors, shifts = primitive_neighbor_list(
        'ijdDS', [True, True, True], cell, positions, cutoff, self_interaction=False
    )
    # keep one direction of each pair; for self-images keep the shift that is lexicographically positive
    first_nonzero = np.where(shifts[:, 0] != 0, shifts[:, 0], np.where(shifts[:, 1] != 0, shifts[:, 1], shifts[:, 2]))
    keep = (i < j) | ((i == j) & (first_nonzero > 0))
    return PairList(i[keep], j[keep], distances[keep], vectors[keep], n_atoms, float(cutoff))


def pair_distance_histogram(
    atoms: Atoms,
    codes: np.ndarray,
    n_species: int,
    dr: float,
    n_bins: int,
    positions: np.ndarray | None = None,
    method: str = 'auto',
) -> np.ndarray:
    """Unordered pairs closer than ``n_bins * dr`` counted per species pair and bin, shape (n_species², n_bins).

    ``codes`` gives each atom's species index; row ``min(a, b) * n_species + max(a, b)`` holds the pairs of species
    a and b (other rows stay zero). A distance d falls in bin ``min(int(d / dr), n_bins - 1)``. ``method``:
    ``"kernel"`` (numba cell list; orthorhombic cells, cutoff within half the smallest width), ``"pairs"``
    (:func:`neighbor_pairs` + ``bincount``, any cell) or ``"auto"`` (the kernel where it applies and numba is
    installed). Both give identical integer counts.
    """
    require_periodic(atoms, 'a pair distance histogram')
    cell = np.asarray(atoms.cell, dtype=float)
    positions = np.asarray(atoms.positions if positions is None else positions, dtype=float)
    codes = np.asarray(codes, dtype=np.int64)
    cutoff = float(np.linspace(0.0, n_bins * dr, n_bins + 1)[-1])  # the last edge, as compute_rdf builds it
    if method not in ('auto', 'kernel', 'pairs'):
        raise AnalysisInputError(f'method must be "auto", "kernel" or "pairs", got {method!r}.')
    fits = _is_orthorhombic(cell) and cutoff <= 0.5 * perpendicular_widths(cell).min() * (1 + 1e-12)
    if method != 'pairs':
        from . import _kernels

        if method == 'kernel' and not (fits and _kernels.HAVE_NUMBA):
            raise AnalysisInputError(
                'the histogram kernel needs numba and an orthorhombic cell with the cutoff within half its smallest '
                'width; use method="auto" to fall back to the pair list.'
            )
        if fits and _kernels.HAVE_NUMBA:
            a, b = np.meshgrid(np.arange(n_species), np.arange(n_species), indexing='ij')
            row_of_pair = (np.minimum(a, b) * n_species + np.maximum(a, b)).ravel()
            box = np.diag(cell).copy()
            return _kernels.pair_histogram_orthorhombic(
                _wrap(positions, box), box, codes, row_of_pair, n_species * n_species, cutoff, dr, n_bins
            )
    pairs = neighbor_pairs(atoms, cutoff, positions=positions, with_vectors=False)
    bins = np.minimum((pairs.distances / dr).astype(np.intp), n_bins - 1)
    ci, cj = codes[pairs.i], codes[pairs.j]
    pair_code = np.minimum(ci, cj) * n_species + np.maximum(ci, cj)
    return np.bincount(pair_code * n_bins + bins, minlength=n_species * n_species * n_bins).reshape(
        n_species * n_species, n_bins
    )

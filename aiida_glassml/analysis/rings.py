"""Guttman rings of the former–anion network (L. Guttman, J. Non-Cryst. Solids 116, 145 (1990)).

For every former–anion bond (u, v) the ring is the shortest path from u to v in the bond graph with the direct
bond removed, closed by that bond. The ring size is the number of atoms in it (formers and anions, as in
R.I.N.G.S. and vitrum); a ring with k formers has 2k atoms.

Speed: all bonds are searched at once by a level-synchronous breadth-first search on sparse matrices (one sparse
product per level for every bond together), and paths are traced back level by level, also for all bonds at once.
Where several shortest paths close a bond, each gives a ring (``all_shortest=True``, the default); rings found from
several bonds are counted once. A closed path whose bond vectors do not sum to zero winds around the periodic cell;
it is not a ring. Where every shortest closure of a bond wraps (common in cells of a few hundred atoms), the search
carries on past it: simple paths of increasing length, up to ``max_size``, until one closes inside the cell (as
vitrum and R.I.N.G.S. do; ``n_deepened`` counts these bonds, ``n_wrapping`` those left without a ring).
"""

from __future__ import annotations

import dataclasses
import typing as t

import numpy as np
from ase import Atoms

from .errors import AnalysisInputError
from .neighbors import minimum_image, neighbor_pairs, perpendicular_widths, require_periodic
from .structure import BondGraph, bond_graph, compute_rdf, default_cutoffs, pair_key

__all__ = ('RingResult', 'guttman_rings', 'ring_centre_rdf')


@dataclasses.dataclass
class RingResult:
    """Rings of one structure.

    ``rings``: atom indices of each distinct ring, in order around it; ``sizes``: atoms per ring; ``centres``:
    ring centres (Å, wrapped into the cell); ``bond_ring_size``: Guttman ring size per searched bond (0 where no
    ring up to ``max_size`` closes it), aligned with ``bonds`` (pairs former, anion).
    """

    rings: list[np.ndarray]
    sizes: np.ndarray
    centres: np.ndarray
    bonds: np.ndarray
    bond_ring_size: np.ndarray
    cutoffs: dict[str, float]
    formers: tuple[str, ...]
    anions: tuple[str, ...]
    max_size: int
    n_wrapping: int = 0
    n_deepened: int = 0

    def size_distribution(self) -> dict[int, int]:
        """Number of distinct rings of each size (atoms per ring)."""
        values, counts = np.unique(self.sizes, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def bond_size_distribution(self) -> dict[int, int]:
        """Number of bonds whose Guttman ring has each size (0: none up to ``max_size``)."""
        values, counts = np.unique(self.bond_ring_size, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def former_counts(self, symbols: t.Sequence[str]) -> list[dict[str, int]]:
        """Formers of each species in each ring, e.g. ``{"P": 2, "Fe": 1}``."""
        symbols = np.asarray(symbols)
        result = []
        for ring in self.rings:
            found, counts = np.unique(symbols[ring], return_counts=True)
            result.append({str(s): int(c) for s, c in zip(found, counts) if s in self.formers})
        return result


def _ring_cutoffs(atoms: Atoms, cutoffs: dict | None, formers, anions) -> dict[str, float]:
    wanted = [pair_key(f, a) for f in formers for a in anions]
    given = {pair_key(*k.split('-')) if isinstance(k, str) else pair_key(*k): float(v) for k, v in (cutoffs or {}).items()}
    missing = [k for k in wanted if k not in given]
    if missing:
        rdf = compute_rdf(atoms, r_max=min(6.0, 0.5 * perpendicular_widths(atoms.cell).min()))
        given.update(default_cutoffs(rdf, missing))
    return {k: given[k] for k in wanted if k in given}


def guttman_rings(
    atoms: Atoms,
    cutoffs: dict | None = None,
    formers: t.Sequence[str] = ('P', 'Fe'),
    anions: t.Sequence[str] = ('O',),
    max_size: int = 24,
    all_shortest: bool = True,
) -> RingResult:
    """Guttman rings through every former–anion bond (see module docstring). ``cutoffs`` default to the first
    minima of the former–anion partial g(r); ``max_size`` bounds the ring size (atoms). With ``all_shortest``
    every shortest path closing a bond gives a ring (Guttman's definition, as in R.I.N.G.S. and vitrum);
    otherwise only the one through the lowest atom indices."""
    require_periodic(atoms, 'ring analysis')
    from scipy.sparse import csr_matrix

    if max_size < 4:
        raise AnalysisInputError(f'max_size is a number of atoms per ring and must be at least 4, got {max_size}.')
    symbols = np.array(atoms.get_chemical_symbols())
    formers = tuple(f for f in formers if f in symbols)
    anions = tuple(a for a in anions if a in symbols)
    if not formers or not anions:
        raise AnalysisInputError(
            f'no formers {formers} or anions {anions} in this structure ({sorted(set(symbols))}); pass formers= and '
            'anions= naming elements that are present.'
        )
    used = _ring_cutoffs(atoms, cutoffs, formers, anions)
    graph: BondGraph = bond_graph(atoms, used)
    n = len(atoms)
    i, j = graph.bonds.i, graph.bonds.j
    is_former = np.isin(symbols, formers)
    keep = is_former[i] != is_former[j]
    u = np.where(is_former[i], i, j)[keep]
    v = np.where(is_former[i], j, i)[keep]
    bonds = np.stack([u, v], axis=1)
    m = len(u)
    adjacency = csr_matrix((np.ones(2 * m, dtype=np.float32), (np.concatenate([u, v]), np.concatenate([v, u]))), shape=(n, n))
    rows = np.arange(m)

    def one_hot(cols):
        return csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(m, n))

    start = one_hot(u)
    target = one_hot(v)
    frontier = start @ adjacency
    frontier = frontier - frontier.multiply(target)  # the direct bond is not a path
    frontier.eliminate_zeros()
    visited = (start + frontier).astype(bool)
    levels = [start.tocsr(), frontier.tocsr()]
    ring_hops = np.zeros(m, dtype=int)
    active = np.ones(m, dtype=bool)
    for hops in range(2, max_size):
        frontier = (frontier @ adjacency).astype(bool)
        frontier = frontier.astype(np.float32) - frontier.multiply(visited).astype(np.float32)
        frontier.eliminate_zeros()
        frontier = frontier.tocsr()
        if frontier.nnz == 0:
            levels.append(frontier)
            break
        reached = np.asarray(frontier.multiply(target).sum(axis=1)).ravel() > 0
        newly = reached & active
        ring_hops[newly] = hops
        active &= ~newly
        # found or exhausted bonds stop expanding
        frontier = csr_matrix(frontier.multiply(active[:, None].astype(np.float32)))
        frontier.eliminate_zeros()
        levels.append(frontier)
        visited = (visited + frontier.astype(bool)).astype(bool)
        if not active.any():
            break
    # trace one shortest path back for every closed bond, all bonds of one length together
    rings, seen, n_wrapping, wrapping = [], set(), 0, []
    cell = np.asarray(atoms.cell)
    positions = atoms.positions
    for hops in np.unique(ring_hops[ring_hops > 0]):
        bond_rows = np.flatnonzero(ring_hops == hops)
        path_bond = bond_rows.copy()
        paths = np.zeros((len(bond_rows), hops + 1), dtype=np.intp)
        paths[:, hops] = v[bond_rows]
        paths[:, 0] = u[bond_rows]
        for level in range(hops - 1, 0, -1):
            candidates = levels[level][path_bond].multiply(adjacency[paths[:, level + 1]]).tocsr()
            candidates.sort_indices()
            if all_shortest:
                repeat = np.repeat(np.arange(len(paths)), np.diff(candidates.indptr))
                paths, path_bond = paths[repeat], path_bond[repeat]
                paths[:, level] = candidates.indices
            else:
                paths[:, level] = candidates.indices[candidates.indptr[:-1]]
        closes = _closes_in_cell(paths, positions, cell)
        for path, ok in zip(paths, closes):
            key = tuple(sorted(path.tolist()))
            if ok and key not in seen:
                seen.add(key)
                rings.append(path)
        wrapping.extend(np.setdiff1d(path_bond[~closes], path_bond[closes]).tolist())
    # bonds whose every shortest closure wraps around the cell: look for longer closures that stay inside it
    neighbour_lists = [adjacency.indices[adjacency.indptr[k] : adjacency.indptr[k + 1]].tolist() for k in range(n)]
    n_deepened = 0
    for bond in wrapping:
        found, length = _shortest_rings_inside_cell(neighbour_lists, positions, cell, int(u[bond]), int(v[bond]),
                                                    int(ring_hops[bond]), max_size - 1)  # fmt: skip
        if not found:
            ring_hops[bond] = -1
            n_wrapping += 1
            continue
        n_deepened += int(length > ring_hops[bond])
        ring_hops[bond] = length
        for path in found:
            key = tuple(sorted(path.tolist()))
            if key not in seen:
                seen.add(key)
                rings.append(path)
    sizes = np.array([len(r) for r in rings], dtype=int)
    centres = np.array([_ring_centre(positions, cell, ring) for ring in rings]).reshape(-1, 3)
    bond_size = np.where(ring_hops > 0, ring_hops + 1, 0)
    return RingResult(rings, sizes, centres, bonds, bond_size, used, formers, anions, max_size, n_wrapping, n_deepened)


#: bounds on the deepened search per bond (as vitrum): steps of the path walk, and equally long paths kept
MAX_SEARCH_STEPS = 200_000
MAX_PATHS = 4096


def _closes_in_cell(paths: np.ndarray, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Per closed path (rows of atom indices, the last bonded back to the first): do its bond vectors sum to 0?"""
    steps = minimum_image(positions[np.roll(paths, -1, axis=1)] - positions[paths], cell)
    return np.linalg.norm(steps.sum(axis=1), axis=1) < 1e-6


def _shortest_rings_inside_cell(
    neighbours: list[list[int]], positions, cell, source: int, target: int, first_hops: int, max_hops: int
) -> tuple[list[np.ndarray], int]:
    """The shortest simple paths source → target (direct bond removed) of at least ``first_hops`` and at most
    ``max_hops`` bonds that close inside the cell, and their length; ([], 0) if none (or the walk hits its bounds)."""
    from collections import deque

    def banned(a, b):
        return (a == source and b == target) or (a == target and b == source)

    distance = {target: 0}  # hops to target without the direct bond: prunes the walk
    queue = deque([target])
    while queue:
        a = queue.popleft()
        if distance[a] >= max_hops:
            continue
        for b in neighbours[a]:
            if b not in distance and not banned(a, b):
                distance[b] = distance[a] + 1
                queue.append(b)
    if source not in distance:
        return [], 0
    for length in range(max(first_hops, distance[source]), max_hops + 1):
        paths, path, on_path, steps, capped = [], [source], {source}, 0, False

        def walk(a, remaining):
            nonlocal steps, capped
            if remaining == 0:
                if a == target:
                    paths.append(list(path))
                return
            for b in neighbours[a]:
                if capped:
                    return
                if b in on_path or banned(a, b) or (b == target and remaining > 1):
                    continue
                if distance.get(b, max_hops + 1) > remaining - 1:
                    continue
                steps += 1
                if steps > MAX_SEARCH_STEPS or len(paths) >= MAX_PATHS:
                    capped = True
                    return
                on_path.add(b)
                path.append(b)
                walk(b, remaining - 1)
                path.pop()
                on_path.discard(b)

        walk(source, length)
        if paths:
            candidates = np.array(paths, dtype=np.intp)
            inside = candidates[_closes_in_cell(candidates, positions, cell)]
            if len(inside):
                return list(inside), length
        if capped:
            return [], 0
    return [], 0


def _ring_centre(positions: np.ndarray, cell: np.ndarray, ring: np.ndarray) -> np.ndarray:
    steps = minimum_image(np.diff(positions[ring], axis=0), cell)
    unwrapped = positions[ring[0]] + np.vstack([np.zeros(3), np.cumsum(steps, axis=0)])
    centre = unwrapped.mean(axis=0)
    fractional = np.linalg.solve(cell.T, centre) % 1.0
    return fractional @ cell


def ring_centre_rdf(
    atoms: Atoms,
    centres: np.ndarray,
    species: str | t.Sequence[str] = 'Na',
    r_max: float = 8.0,
    dr: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radial distribution of ``species`` atoms around ring centres: returns (r, g(r), n(r)) with g normalised by
    the number density of ``species`` (→ 1 far away) and n(r) the mean count within r."""
    require_periodic(atoms, 'ring-centre distributions')
    centres = np.asarray(centres, dtype=float).reshape(-1, 3)
    symbols = np.array(atoms.get_chemical_symbols())
    targets = np.flatnonzero(np.isin(symbols, np.atleast_1d(species)))
    if len(centres) == 0 or len(targets) == 0:
        raise AnalysisInputError(f'need at least one ring centre and one {species} atom for a ring-centre g(r).')
    half_width = 0.5 * perpendicular_widths(atoms.cell).min()
    if r_max > half_width:
        raise AnalysisInputError(f'r_max={r_max} Å exceeds half the cell width ({half_width:.3f} Å); lower r_max.')
    combined = Atoms(
        numbers=np.concatenate([np.zeros(len(centres), dtype=int), atoms.numbers[targets]]),
        positions=np.concatenate([centres, atoms.positions[targets]]), cell=atoms.cell, pbc=True,
    )  # fmt: skip
    pairs = neighbor_pairs(combined, r_max, with_vectors=False)
    n_c = len(centres)
    cross = (pairs.i < n_c) != (pairs.j < n_c)
    distances = pairs.distances[cross]
    edges = np.arange(0.0, r_max + dr / 2, dr)
    hist, _ = np.histogram(distances, bins=edges)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    rho = len(targets) / atoms.get_volume()
    per_centre = hist / n_c
    return 0.5 * (edges[1:] + edges[:-1]), per_centre / (rho * shell), np.cumsum(per_centre)

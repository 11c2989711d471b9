"""Dynamic heterogeneity: fast and slow ions and the structure around them.

Ions of one species are ranked by how far they moved between ``origin`` and ``origin + time``: the top quarter
are "fast", the bottom quarter "slow". Mobility-resolved partial g(r) (fast–fast, slow–slow, fast–Fe, …) and
ring-centre distributions per class are computed on the configuration at the origin. Pure numpy; no AiiDA imports.
"""

from __future__ import annotations

import dataclasses
import typing as t

import numpy as np
from ase import Atoms

from .dynamics import Trajectory, _load_unwrapped, species_displacement_sums
from .errors import AnalysisInputError
from .neighbors import neighbor_pairs, perpendicular_widths


@dataclasses.dataclass
class MobilityClasses:
    species: str
    time: float  # ps, displacement interval
    origin: float  # ps
    indices: np.ndarray  # trajectory indices of the ranked ions
    displacement: np.ndarray  # Å, per ranked ion
    fast: np.ndarray  # trajectory indices
    slow: np.ndarray
    fraction: float

    def as_dict(self) -> dict:
        return {
            'species': self.species, 'time_ps': self.time, 'origin_ps': self.origin, 'fraction': self.fraction,
            'n_fast': int(self.fast.size), 'n_slow': int(self.slow.size),
            'fast_min_displacement_A': float(self.displacement[np.isin(self.indices, self.fast)].min()),
            'slow_max_displacement_A': float(self.displacement[np.isin(self.indices, self.slow)].max()),
            'mean_displacement_A': float(self.displacement.mean()),
        }  # fmt: skip


def classify_mobility(
    traj: Trajectory,
    species: str = 'Na',
    time: float = 10.0,
    *,
    origin: float = 0.0,
    fraction: float = 0.25,
    remove_drift: bool = True,
) -> MobilityClasses:
    """Rank ``species`` ions by displacement |r(origin + time) − r(origin)| (unwrapped, drift-corrected); the
    top ``fraction`` are fast, the bottom ``fraction`` slow."""
    if not 0 < fraction <= 0.5:
        raise AnalysisInputError(f'fraction must be in (0, 0.5] so fast and slow do not overlap, got {fraction}.')
    start = traj.frame_of_time(origin, 'origin')
    end = traj.frame_of_time(origin + time, 'origin + time')
    if end <= start:
        raise AnalysisInputError(f'time must be positive (ps), got {time}.')
    index = traj.indices(species)
    positions = _load_unwrapped(traj, index)
    displacement = positions[end] - positions[start]
    if remove_drift:
        com, _, _ = species_displacement_sums(traj)
        displacement -= com[end] - com[start]
    distance = np.linalg.norm(displacement, axis=1)
    n_class = int(np.floor(fraction * index.size))
    if n_class < 1:
        raise AnalysisInputError(f'{index.size} {species} ions are too few to take a fraction of {fraction}.')
    order = np.argsort(distance, kind='stable')
    return MobilityClasses(
        species=species, time=float(time), origin=float(origin), indices=index, displacement=distance,
        fast=np.sort(index[order[-n_class:]]), slow=np.sort(index[order[:n_class]]), fraction=float(fraction),
    )  # fmt: skip


def frame_atoms(traj: Trajectory, time: float = 0.0) -> Atoms:
    """The configuration at ``time`` (ps) as ASE ``Atoms`` (wrapped positions, periodic cell)."""
    frame = traj.frame_of_time(time, 'time')
    cell = traj.require_cell('a configuration for g(r)')
    cell = cell if cell.ndim == 2 else cell[frame]
    positions = np.asarray(traj.positions[frame], dtype=float)
    return Atoms(symbols=list(traj.symbols), positions=positions, cell=cell, pbc=True)


def _groups(atoms: Atoms, classes: MobilityClasses, partners: t.Iterable[str]) -> dict[str, np.ndarray]:
    symbols = np.array(atoms.get_chemical_symbols())
    groups = {'fast': classes.fast, 'slow': classes.slow}
    for name in partners:
        found = np.flatnonzero(symbols == name)
        if found.size == 0:
            raise AnalysisInputError(f'partner species {name!r} is not in the structure ({sorted(set(symbols))}).')
        groups[name] = found
    return groups


def mobility_partial_rdf(
    atoms: Atoms,
    classes: MobilityClasses,
    partners: t.Sequence[str] = ('Fe', 'P', 'O', 'Na'),
    *,
    r_max: float = 8.0,
    dr: float = 0.05,
) -> dict[str, np.ndarray]:
    """Partial g(r) between mobility classes and species on one configuration (normally the one at the origin).

    Keys ``'fast-fast'``, ``'slow-slow'``, ``'fast-slow'`` and ``'fast-X'``, ``'slow-X'`` for each partner X, plus
    ``'r'``. g_AB uses ρ_B = (N_B − δ_AB)/V and counts each A atom as a centre, so it tends to 1 far away.
    """
    half_width = 0.5 * perpendicular_widths(atoms.cell).min()
    if r_max > half_width:
        raise AnalysisInputError(f'r_max={r_max} Å exceeds half the cell width ({half_width:.3f} Å); lower r_max.')
    groups = _groups(atoms, classes, partners)
    pairs = neighbor_pairs(atoms, r_max, with_vectors=False)
    edges = np.arange(0.0, r_max + dr / 2, dr)
    n_bins = edges.size - 1
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    volume = atoms.get_volume()
    bins = np.minimum((pairs.distances / dr).astype(np.intp), n_bins)
    member = {name: np.isin(np.arange(len(atoms)), index) for name, index in groups.items()}
    wanted = [('fast', 'fast'), ('slow', 'slow'), ('fast', 'slow')]
    wanted += [(c, p) for p in partners for c in ('fast', 'slow')]
    result = {'r': 0.5 * (edges[1:] + edges[:-1])}
    for a, b in wanted:
        # pairs are unordered (i < j): count both orientations, centre in A and neighbour in B
        forward = member[a][pairs.i] & member[b][pairs.j]
        backward = member[a][pairs.j] & member[b][pairs.i]
        counts = (np.bincount(bins[forward], minlength=n_bins + 1) + np.bincount(bins[backward], minlength=n_bins + 1))
        counts = counts[:n_bins]
        overlap = np.intersect1d(groups[a], groups[b]).size
        n_a = groups[a].size
        partners_b = groups[b].size - overlap / max(n_a, 1)  # B atoms other than the centre, on average
        result[f'{a}-{b}'] = counts / (n_a * partners_b / volume * shell) if partners_b > 0 else np.zeros(n_bins)
    return result


def mobility_ring_centre_rdf(
    atoms: Atoms,
    classes: MobilityClasses,
    centres: np.ndarray,
    *,
    r_max: float = 8.0,
    dr: float = 0.05,
) -> dict[str, np.ndarray]:
    """g(r) of fast and of slow ions around ring centres (from :func:`aiida_glassml.analysis.rings.guttman_rings`),
    each normalised by its own class density: keys ``'r'``, ``'fast'``, ``'slow'`` and ``'n_fast'``, ``'n_slow'``
    (running counts)."""
    from .rings import ring_centre_rdf

    result = {}
    for name, index in (('fast', classes.fast), ('slow', classes.slow)):
        subset = atoms[index]
        r, g, n = ring_centre_rdf(subset, centres, species=classes.species, r_max=r_max, dr=dr)
        result['r'], result[name], result[f'n_{name}'] = r, g, n
    return result

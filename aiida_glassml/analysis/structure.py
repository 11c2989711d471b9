"""Short- and medium-range structure of glasses: g(r), coordination, bond angles, Qⁿ, bridging, edge sharing,
tetrahedral order, oxidation states from magnetic moments, density.

Conventions
-----------
- Pair keys are strings ``"A-B"``; :func:`pair_key` orders them cation first, anion last (``"Fe-O"``, ``"P-S"``),
  otherwise alphabetically (``"Fe-P"``). Every function accepting cutoffs accepts either order.
- Bonds are pairs closer than the pair cutoff. Default cutoffs are the first minimum of the partial g(r) after its
  first peak (:func:`default_cutoffs`); the cutoffs used are always returned.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing as t

import numpy as np
from ase import Atoms

from .errors import AnalysisInputError
from .neighbors import PairList, neighbor_pairs, pair_distance_histogram, perpendicular_widths, require_periodic

__all__ = (
    'ANIONS',
    'AMU_PER_A3_TO_G_PER_CM3',
    'BondGraph',
    'RDF',
    'THESIS_PBE0_V_BINS',
    'analyse_structure',
    'bond_angle_distribution',
    'bond_angles',
    'bond_graph',
    'bridging_statistics',
    'check_structure_options',
    'compute_rdf',
    'coordination_distribution',
    'coordination_numbers',
    'default_cutoffs',
    'density',
    'edge_sharing',
    'first_minimum',
    'first_peak',
    'former_former_bonds',
    'oxidation_state_counts',
    'oxidation_states_from_magmoms',
    'pair_key',
    'validate_oxidation_bins',
    'qn_conventions',
    'qn_speciation',
    'rdf_peaks',
    'ring_summary',
    'tetrahedral_order',
)

#: species treated as anions when ordering pair keys and choosing bonded pairs
ANIONS = ('O', 'S', 'F', 'Cl', 'Se', 'N', 'Br', 'I', 'Te')
#: amu/Å³ → g/cm³
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660
#: PBE0 magnetic-moment bins (|m| in μB, lower, upper, oxidation state) for vanadium from the thesis
THESIS_PBE0_V_BINS = ((0.0, 0.2, 5), (0.8, 1.2, 4), (1.8, 2.2, 3))
#: iron bins (high spin: Fe3+ d5, Fe2+ d6). Typical of PBE+U and hybrid functionals; the moments depend on the
#: functional and U, so check a histogram of your own moments and pass ``bins`` when they differ.
DEFAULT_FE_BINS = ((3.4, 3.95, 2), (3.95, 4.6, 3))
#: default bins per element for :func:`oxidation_state_counts`
DEFAULT_OXIDATION_BINS = {'V': THESIS_PBE0_V_BINS, 'Fe': DEFAULT_FE_BINS}


def pair_key(a: str, b: str) -> str:
    """Canonical ``"A-B"`` key: a cation before an anion, otherwise alphabetical."""
    a_anion, b_anion = a in ANIONS, b in ANIONS
    if a_anion != b_anion:
        return f'{b}-{a}' if a_anion else f'{a}-{b}'
    return '-'.join(sorted((a, b)))


def _split(key: str) -> tuple[str, str]:
    parts = key.split('-')
    if len(parts) != 2 or not all(parts):
        raise AnalysisInputError(f'pair key {key!r} is not of the form "A-B" (e.g. "Fe-O").')
    return parts[0], parts[1]


def _normalise_cutoffs(cutoffs: dict | None) -> dict[str, float]:
    """Accept ``{"Fe-O": 2.7}`` or ``{("Fe", "O"): 2.7}`` in either order; return canonical string keys."""
    result = {}
    for key, value in (cutoffs or {}).items():
        a, b = _split(key) if isinstance(key, str) else key
        if not np.isfinite(value) or value <= 0:
            raise AnalysisInputError(f'cutoff for {a}-{b} must be a positive number of Å, got {value!r}.')
        result[pair_key(a, b)] = float(value)
    return result


def check_structure_options(atoms: Atoms, cutoffs: dict | None, formers: t.Sequence[str],
                            anions: t.Sequence[str]) -> dict[str, float]:  # fmt: skip
    """Check user choices against ``atoms`` before any work (or storing): cutoffs are positive and name elements of
    the structure (a typo such as ``Fe-0`` would otherwise be ignored), formers and anions are element symbols
    (absent ones are fine: the defaults list P, Fe, O and S for every glass). Returns the normalised cutoffs."""
    from ase.data import chemical_symbols

    for role, names in (('former', formers), ('anion', anions)):
        unknown = [n for n in names if n not in chemical_symbols[1:]]
        if unknown:
            raise AnalysisInputError(f'{role}s {unknown} are not element symbols; give e.g. --{role}s '
                                     f'{"P,Fe" if role == "former" else "O,S"}.')  # fmt: skip
    present = sorted(set(atoms.get_chemical_symbols()))
    for key in cutoffs or {}:
        for element in _split(key) if isinstance(key, str) else key:
            if element not in chemical_symbols[1:]:
                raise AnalysisInputError(f'cutoff {key!r}: {element!r} is not an element symbol (e.g. Fe-O, with the '
                                         'letter O).')  # fmt: skip
            if element not in present:
                raise AnalysisInputError(f'cutoff {key!r}: the structure has no {element} '
                                         f'(it has {", ".join(present)}).')  # fmt: skip
    return _normalise_cutoffs(cutoffs)


def density(atoms: Atoms) -> float:
    """Mass density in g/cm³."""
    require_periodic(atoms, 'density')
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3)


# ----------------------------------------------------------------------------------------------------------- g(r)


@dataclasses.dataclass
class RDF:
    """Histogram-based radial distribution functions, averaged over frames.

    ``pair_counts[key]`` is the number of unordered pairs per frame in each bin (for ``A-A`` each pair once).
    """

    edges: np.ndarray
    species: tuple[str, ...]
    counts: dict[str, int]  # atoms per species
    volume: float  # mean cell volume, Å³
    pair_counts: dict[str, np.ndarray]
    n_frames: int = 1

    @property
    def r(self) -> np.ndarray:
        """Bin centres, Å."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def n_atoms(self) -> int:
        return int(sum(self.counts.values()))

    @property
    def number_density(self) -> float:
        """Atoms per Å³."""
        return self.n_atoms / self.volume

    @property
    def concentrations(self) -> dict[str, float]:
        return {s: n / self.n_atoms for s, n in self.counts.items()}

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Unordered species pairs, in canonical key order."""
        return [_split(pair_key(a, b)) for a, b in itertools.combinations_with_replacement(self.species, 2)]

    def _neighbours_per_centre(self, centre: str, neighbour: str) -> np.ndarray:
        counts = self.pair_counts[pair_key(centre, neighbour)]
        factor = 2.0 if centre == neighbour else 1.0
        return factor * counts / self.counts[centre]

    def g(self, a: str, b: str) -> np.ndarray:
        """Partial g_ab(r) (symmetric in a, b), normalised with ρ_b = (N_b − δ_ab) / V so that an ideal gas
        gives exactly 1 on average."""
        shell = 4.0 / 3.0 * np.pi * (self.edges[1:] ** 3 - self.edges[:-1] ** 3)
        partners = self.counts[b] - (1 if a == b else 0)
        if partners <= 0:
            return np.zeros_like(shell)
        return self._neighbours_per_centre(a, b) / (partners / self.volume * shell)

    def running_coordination(self, centre: str, neighbour: str) -> np.ndarray:
        """n(r): mean number of ``neighbour`` atoms within r (bin upper edge) of a ``centre`` atom, counted exactly."""
        return np.cumsum(self._neighbours_per_centre(centre, neighbour))

    def total(self, weights: dict[str, float] | None = None) -> np.ndarray:
        """Total g(r) = Σ_ab w_a w_b g_ab / (Σ_a w_a)², with w = c (number concentrations) unless given
        (e.g. c·b for neutron weighting)."""
        c = self.concentrations
        w = {s: c[s] * (1.0 if weights is None else weights[s]) for s in self.species}
        norm = sum(w.values()) ** 2
        return sum(w[a] * w[b] * self.g(a, b) for a in self.species for b in self.species) / norm

    def partials(self) -> dict[str, np.ndarray]:
        return {f'{a}-{b}': self.g(a, b) for a, b in self.pairs}


def compute_rdf(
    frames: Atoms | t.Iterable[Atoms], r_max: float | None = None, dr: float = 0.02, method: str = 'auto'
) -> RDF:
    """Partial g(r) of one structure or averaged over frames (streamed; one frame in memory).

    ``r_max`` defaults to half the smallest perpendicular cell width (the largest radius free of self-images)
    and may not exceed it. ``method`` picks the pair counting of :func:`~.neighbors.pair_distance_histogram`
    (``"auto"``: the numba cell-list kernel for orthorhombic cells, the pair list otherwise).
    """
    frames = [frames] if isinstance(frames, Atoms) else frames
    result = None
    for frame in frames:
        require_periodic(frame, 'g(r)')
        half_width = 0.5 * perpendicular_widths(frame.cell).min()
        if r_max is None:
            r_max = min(float(np.floor(half_width / dr + 1e-9) * dr), half_width)
        elif r_max > half_width + 1e-9:
            raise AnalysisInputError(
                f'r_max={r_max} Å exceeds half the smallest cell width ({half_width:.3f} Å), where g(r) would count '
                f'periodic images of the same atoms; pass r_max <= {half_width:.3f} or use a larger cell.'
            )
        n_bins = int(round(r_max / dr))
        symbols = np.array(frame.get_chemical_symbols())
        if result is None:
            species = tuple(sorted(set(symbols.tolist())))
            counts = {s: int((symbols == s).sum()) for s in species}
            edges = np.linspace(0.0, n_bins * dr, n_bins + 1)
            keys = [pair_key(a, b) for a, b in itertools.combinations_with_replacement(species, 2)]
            result = RDF(edges, species, counts, 0.0, {k: np.zeros(n_bins) for k in keys}, 0)
        elif {s: int((symbols == s).sum()) for s in result.species} != result.counts:
            raise AnalysisInputError('frames differ in composition; g(r) averages frames of one fixed composition.')
        code = np.searchsorted(np.array(result.species), symbols)
        ns = len(result.species)
        hist = pair_distance_histogram(frame, code, ns, dr, n_bins, method=method)
        for a_index, b_index in itertools.combinations_with_replacement(range(ns), 2):
            key = pair_key(result.species[a_index], result.species[b_index])
            result.pair_counts[key] += hist[a_index * ns + b_index]
        result.volume += frame.get_volume()
        result.n_frames += 1
    if result is None:
        raise AnalysisInputError('no frames were given to compute g(r) from.')
    result.volume /= result.n_frames
    for key in result.pair_counts:
        result.pair_counts[key] /= result.n_frames
    return result


def _first_peak(r: np.ndarray, g: np.ndarray, smoothing: float) -> tuple[np.ndarray, int | None]:
    """(smoothed g, index of its first peak or None); see :func:`first_minimum`."""
    dr = r[1] - r[0]
    width = max(1, int(round(smoothing / dr)))
    smooth = np.convolve(g, np.ones(width) / width, mode='same')
    if not np.any(smooth > 0):
        return smooth, None
    threshold = max(1.0, 0.5 * smooth.max())
    above = np.flatnonzero(smooth > threshold)
    if len(above) == 0:
        return smooth, None
    start = above[0]
    stop = min(len(r), start + int(round(0.5 / dr)) + 1)
    return smooth, start + int(np.argmax(smooth[start:stop]))


def first_peak(r: np.ndarray, g: np.ndarray, smoothing: float = 0.1) -> float | None:
    """Position (Å) of the first peak of g(r) (as in :func:`first_minimum`), or ``None`` if g(r) has none."""
    _, peak = _first_peak(r, g, smoothing)
    return None if peak is None else float(r[peak])


def first_minimum(r: np.ndarray, g: np.ndarray, smoothing: float = 0.1, window: float = 0.3) -> float | None:
    """First minimum of g(r) after its first peak (Å), or ``None`` if g(r) has no peak.

    g is smoothed with a moving average of width ``smoothing`` Å. The first peak is the highest point within 0.5 Å
    after g first exceeds max(1, g_max/2); the minimum is the first point after it that is the lowest within
    ±``window`` Å; where g is empty there (g < 0.01, a gap between shells) the middle of the gap is returned.
    """
    dr = r[1] - r[0]
    smooth, peak = _first_peak(r, g, smoothing)
    if peak is None:
        return None
    half = max(1, int(round(window / dr)))
    for index in range(peak + 1, len(r) - 1):
        lo, hi = max(peak + 1, index - half), min(len(r), index + half + 1)
        if smooth[index] <= smooth[lo:hi].min() and hi - index > half // 2:
            # a flat minimum (g ≈ 0 between shells): take the middle of the flat stretch, away from both peaks
            end = index
            while smooth[index] < 0.01 and end + 1 < len(r) and smooth[end + 1] < 0.01:
                end += 1
            return float(r[(index + end) // 2])
    return None


def rdf_peaks(rdf: 'RDF', pairs: t.Iterable[str] | None = None) -> dict[str, float]:
    """First-peak position (Å) of each partial g(r) (default: every pair); pairs without a peak are left out."""
    result = {}
    for key in pairs if pairs is not None else [pair_key(a, b) for a, b in rdf.pairs]:
        a, b = _split(key)
        if a in rdf.counts and b in rdf.counts:
            position = first_peak(rdf.r, rdf.g(a, b))
            if position is not None:
                result[pair_key(a, b)] = round(position, 3)
    return result


def default_cutoffs(rdf: RDF, pairs: t.Iterable[str] | None = None) -> dict[str, float]:
    """Cutoffs at the first minimum of each partial g(r) after its first peak.

    ``pairs`` defaults to every cation–anion pair present. Pairs without a clear first peak are left out.
    """
    if pairs is None:
        anions = [s for s in rdf.species if s in ANIONS]
        cations = [s for s in rdf.species if s not in ANIONS]
        pairs = [pair_key(c, a) for c in cations for a in anions]
    result = {}
    for key in pairs:
        a, b = _split(key)
        if a not in rdf.counts or b not in rdf.counts:
            continue
        minimum = first_minimum(rdf.r, rdf.g(a, b))
        if minimum is not None:
            result[pair_key(a, b)] = round(minimum, 3)
    return result


# ------------------------------------------------------------------------------------------------------ bond graph


@dataclasses.dataclass
class BondGraph:
    """Bonds (pairs within their pair cutoff) of one structure, as pair list plus per-atom CSR neighbour lists."""

    symbols: np.ndarray
    bonds: PairList  # each bond once
    cutoffs: dict[str, float]
    indptr: np.ndarray  # CSR over both directions
    neighbors: np.ndarray
    vectors: np.ndarray  # from the centre atom to the neighbour, aligned with ``neighbors``
    distances: np.ndarray

    def neighbors_of(self, index: int, species: str | t.Sequence[str] | None = None) -> np.ndarray:
        found = self.neighbors[self.indptr[index] : self.indptr[index + 1]]
        if species is None:
            return found
        return found[np.isin(self.symbols[found], np.atleast_1d(species))]

    def count(self, species: str | t.Sequence[str]) -> np.ndarray:
        """Number of bonded neighbours of the given species, per atom."""
        mask = np.isin(self.symbols[self.neighbors], np.atleast_1d(species))
        centres = np.repeat(np.arange(len(self.symbols)), np.diff(self.indptr))
        return np.bincount(centres[mask], minlength=len(self.symbols))

    def adjacency(self, species: t.Sequence[str] | None = None):
        """Sparse symmetric adjacency matrix (scipy CSR), restricted to bonds between ``species`` if given."""
        from scipy.sparse import csr_matrix

        n = len(self.symbols)
        i, j = self.bonds.i, self.bonds.j
        if species is not None:
            keep = np.isin(self.symbols[i], species) & np.isin(self.symbols[j], species)
            i, j = i[keep], j[keep]
        data = np.ones(2 * len(i), dtype=np.int8)
        return csr_matrix((data, (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n))


def bond_graph(atoms: Atoms, cutoffs: dict) -> BondGraph:
    """Bonds of ``atoms`` for the given pair cutoffs (``{"Fe-O": 2.7, ...}``); pairs not listed are not bonded."""
    cutoffs = _normalise_cutoffs(cutoffs)
    symbols = np.array(atoms.get_chemical_symbols())
    species = sorted(set(symbols.tolist()))
    code = np.searchsorted(np.array(species), symbols)
    table = np.zeros((len(species), len(species)))
    for key, value in cutoffs.items():
        a, b = _split(key)
        if a in species and b in species:
            table[species.index(a), species.index(b)] = table[species.index(b), species.index(a)] = value
    r_max = max(table.max(), 1e-3)
    pairs = neighbor_pairs(atoms, r_max)
    pairs = pairs.select(pairs.distances < table[code[pairs.i], code[pairs.j]])
    both = pairs.both_ways()
    order = np.lexsort((both.j, both.i))
    centre = both.i[order]
    indptr = np.searchsorted(centre, np.arange(len(atoms) + 1))
    return BondGraph(symbols, pairs, cutoffs, indptr, both.j[order], both.vectors[order], both.distances[order])


# ------------------------------------------------------------------------------------------------ coordination


def coordination_numbers(graph: BondGraph) -> dict[str, dict[str, float]]:
    """Mean coordination number of each centre species by each bonded neighbour species: ``{"Fe": {"O": 5.1}}``.
    Only pairs with a cutoff appear."""
    result: dict[str, dict[str, float]] = {}
    species = sorted(set(graph.symbols.tolist()))
    for key in graph.cutoffs:
        a, b = _split(key)
        if a not in species or b not in species:
            continue
        for centre, neighbour in {(a, b), (b, a)}:
            counts = graph.count(neighbour)[graph.symbols == centre]
            result.setdefault(centre, {})[neighbour] = float(counts.mean())
    return result


def coordination_distribution(graph: BondGraph, centre: str, neighbour: str | t.Sequence[str]) -> dict[int, float]:
    """Fraction of ``centre`` sites with each number of bonded ``neighbour`` atoms: ``{4: 0.97, 5: 0.03}``."""
    counts = graph.count(neighbour)[graph.symbols == centre]
    if len(counts) == 0:
        return {}
    values, frequency = np.unique(counts, return_counts=True)
    return {int(v): float(f / len(counts)) for v, f in zip(values, frequency)}


# ---------------------------------------------------------------------------------------------------- bond angles


def bond_angles(graph: BondGraph, triplet: tuple[str, str, str]) -> np.ndarray:
    """All angles (degrees) A–C–B for ``triplet=(A, C, B)`` with A and B bonded to centre C (each angle once)."""
    first, centre, last = triplet
    angles = []
    for index in np.flatnonzero(graph.symbols == centre):
        lo, hi = graph.indptr[index], graph.indptr[index + 1]
        neighbour_symbols = graph.symbols[graph.neighbors[lo:hi]]
        vectors = graph.vectors[lo:hi] / graph.distances[lo:hi, None]
        a_idx, b_idx = np.flatnonzero(neighbour_symbols == first), np.flatnonzero(neighbour_symbols == last)
        if first == last:
            pairs = np.array(list(itertools.combinations(a_idx, 2)), dtype=int).reshape(-1, 2)
        else:
            pairs = np.array(list(itertools.product(a_idx, b_idx)), dtype=int).reshape(-1, 2)
        if len(pairs):
            cosines = np.einsum('ij,ij->i', vectors[pairs[:, 0]], vectors[pairs[:, 1]])
            angles.append(np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0))))
    return np.concatenate(angles) if angles else np.zeros(0)


def bond_angle_distribution(
    graph: BondGraph, triplet: tuple[str, str, str] | str, bin_width: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised distribution P(θ) (per degree) of the A–C–B angle; ``triplet`` may be ``"O-P-O"``.
    Returns (bin centres in degrees, probability density)."""
    if isinstance(triplet, str):
        triplet = tuple(triplet.split('-'))
    if len(triplet) != 3:
        raise AnalysisInputError(f'a bond angle needs three species like "O-P-O", got {triplet!r}.')
    angles = bond_angles(graph, triplet)
    edges = np.arange(0.0, 180.0 + bin_width / 2, bin_width)
    hist, _ = np.histogram(angles, bins=edges, density=len(angles) > 0)
    return 0.5 * (edges[1:] + edges[:-1]), hist.astype(float)


# ----------------------------------------------------------------------------------------------- network topology


def _bridging_mask(graph: BondGraph, formers: t.Sequence[str], anions: t.Sequence[str]) -> np.ndarray:
    """Per atom: an anion bonded to at least two formers."""
    return np.isin(graph.symbols, anions) & (graph.count(formers) >= 2)


def qn_speciation(
    graph: BondGraph,
    formers: t.Sequence[str] = ('P', 'Fe'),
    anions: t.Sequence[str] = ('O', 'S'),
    bridging_formers: t.Sequence[str] | None = None,
) -> dict[str, dict[int, float]]:
    """Qⁿ fractions per former species: n = number of bonded bridging anions (anions of ``anions`` bonded to ≥2
    atoms of ``bridging_formers``, default ``formers``). Pass ``anions=('O',)`` or ``('S',)`` for O and S separately.

    The former set decides the numbers: with ``('P', 'Fe')`` a P–O–Fe oxygen bridges (network convention); the
    phosphate-glass literature counts only P–O–P (``bridging_formers=('P',)``, see :func:`qn_conventions`)."""
    bridging = _bridging_mask(graph, formers if bridging_formers is None else bridging_formers, anions)
    result = {}
    for former in formers:
        sites = np.flatnonzero(graph.symbols == former)
        if len(sites) == 0:
            continue
        n = np.array([bridging[graph.neighbors_of(s)].sum() for s in sites])
        values, frequency = np.unique(n, return_counts=True)
        result[former] = {int(v): float(f / len(sites)) for v, f in zip(values, frequency)}
    return result


def qn_conventions(
    graph: BondGraph, formers: t.Sequence[str] = ('P', 'Fe'), anions: t.Sequence[str] = ('O', 'S')
) -> dict[str, dict]:
    """Qⁿ in both conventions, each labelled with the formers that make an anion bridging (JSON-ready):
    ``"network"`` (any two of ``formers``, e.g. P–O–Fe counts) and, when P is present, ``"phosphate"`` (P–O–P only,
    Qⁿ of P, as in the phosphate-glass literature: use this one to compare with published Qⁿ)."""
    present = set(graph.symbols.tolist())
    formers = [f for f in formers if f in present]
    result = {'network': {'bridging_formers': list(formers), 'qn': qn_speciation(graph, formers, anions)}}
    if 'P' in formers:
        result['phosphate'] = {'bridging_formers': ['P'], 'qn': qn_speciation(graph, ('P',), anions, ('P',))}
    for entry in result.values():
        entry['qn'] = {f: {str(n): v for n, v in d.items()} for f, d in entry['qn'].items()}
    return result


def bridging_statistics(
    graph: BondGraph, formers: t.Sequence[str] = ('P', 'Fe'), anions: t.Sequence[str] = ('O', 'S')
) -> dict[str, float]:
    """"A-X-B bonds per A" for every ordered pair of formers and each anion X (issue #7 definition).

    For A ≠ B: the number of A–X bonds whose X is also bonded to at least one B, divided by the number of A.
    For A = B: the number of A–X–A linkages (an X bonded to k atoms A gives k(k−1)/2) divided by the number of A.
    """
    result = {}
    present = set(graph.symbols.tolist())
    for anion in anions:
        if anion not in present:
            continue
        anion_sites = np.flatnonzero(graph.symbols == anion)
        counts = {f: graph.count(f)[anion_sites] for f in formers}
        for a, b in itertools.product(formers, repeat=2):
            n_a = int((graph.symbols == a).sum())
            if n_a == 0:
                continue
            if a == b:
                value = (counts[a] * (counts[a] - 1) // 2).sum() / n_a
            else:
                value = counts[a][counts[b] >= 1].sum() / n_a
            result[f'{a}-{anion}-{b}'] = float(value)
    return result


def edge_sharing(
    graph: BondGraph, formers: t.Sequence[str] = ('P', 'Fe'), anions: t.Sequence[str] = ('O', 'S')
) -> dict[str, dict[str, int]]:
    """Polyhedron connectivity: pairs of former polyhedra sharing 1 (corner), 2 (edge) or ≥3 (face) anions,
    per former pair: ``{"Fe-Fe": {"corner": 120, "edge": 30, "face": 1}}``."""
    from scipy.sparse import csr_matrix

    former_sites = np.flatnonzero(np.isin(graph.symbols, formers))
    anion_mask = np.isin(graph.symbols, anions)
    rows, cols = [], []
    for row, site in enumerate(former_sites):
        found = graph.neighbors_of(site)
        found = found[anion_mask[found]]
        rows.extend([row] * len(found))
        cols.extend(found.tolist())
    incidence = csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(former_sites), len(graph.symbols)))
    shared = (incidence @ incidence.T).tocoo()
    upper = shared.row < shared.col
    a_sym, b_sym = graph.symbols[former_sites[shared.row[upper]]], graph.symbols[former_sites[shared.col[upper]]]
    n_shared = shared.data[upper]
    result = {}
    for a, b in itertools.combinations_with_replacement(sorted(formers), 2):
        mask = ((a_sym == a) & (b_sym == b)) | ((a_sym == b) & (b_sym == a))
        result[f'{a}-{b}'] = {
            'corner': int((n_shared[mask] == 1).sum()),
            'edge': int((n_shared[mask] == 2).sum()),
            'face': int((n_shared[mask] >= 3).sum()),
        }
    return result


def former_former_bonds(
    atoms: Atoms, formers: t.Sequence[str] = ('P',), cutoffs: dict | None = None, factor: float = 1.1
) -> tuple[dict[str, int], dict[str, float]]:
    """Direct former–former bonds (e.g. P–P). Default cutoff: ``factor`` × sum of covalent radii (ASE).
    Returns (bond counts per pair, cutoffs used)."""
    from ase.data import atomic_numbers, covalent_radii

    used = {}
    given = _normalise_cutoffs(cutoffs)
    for a, b in itertools.combinations_with_replacement(sorted(formers), 2):
        key = pair_key(a, b)
        used[key] = given.get(key, round(factor * (covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]), 3))
    graph = bond_graph(atoms, used)
    counts = {}
    for key in used:
        a, b = _split(key)
        sa, sb = graph.symbols[graph.bonds.i], graph.symbols[graph.bonds.j]
        counts[key] = int((((sa == a) & (sb == b)) | ((sa == b) & (sb == a))).sum())
    return counts, used


def tetrahedral_order(atoms: Atoms, centre: str = 'P', ligands: str | t.Sequence[str] = ('O', 'S'), r_max: float = 3.5) -> np.ndarray:
    """Tetrahedral order parameter q = 1 − 3/8 Σ_{j<k} (cos ψ_jk + 1/3)² over the four nearest ``ligands`` of each
    ``centre`` atom (Errington & Debenedetti, Nature 409, 318 (2001)); q = 1 for a perfect tetrahedron. Sites with
    fewer than four ligands within ``r_max`` get NaN."""
    symbols = np.array(atoms.get_chemical_symbols())
    pairs = neighbor_pairs(atoms, r_max).both_ways()
    keep = (symbols[pairs.i] == centre) & np.isin(symbols[pairs.j], np.atleast_1d(ligands))
    pairs = pairs.select(keep)
    order = np.lexsort((pairs.distances, pairs.i))
    i, vectors = pairs.i[order], pairs.vectors[order] / pairs.distances[order, None]
    sites = np.flatnonzero(symbols == centre)
    starts = np.searchsorted(i, sites)
    ends = np.searchsorted(i, sites, side='right')
    q = np.full(len(sites), np.nan)
    for k, (lo, hi) in enumerate(zip(starts, ends)):
        if hi - lo >= 4:
            u = vectors[lo : lo + 4]
            cosines = (u @ u.T)[np.triu_indices(4, 1)]
            q[k] = 1.0 - 3.0 / 8.0 * np.sum((cosines + 1.0 / 3.0) ** 2)
    return q


def oxidation_states_from_magmoms(
    magmoms: np.ndarray, bins: t.Sequence[tuple[float, float, int]] = THESIS_PBE0_V_BINS, unassigned: int = 0
) -> np.ndarray:
    """Oxidation state per atom from |magnetic moment| (μB) by bins ``(lower, upper, state)`` (inclusive);
    atoms outside every bin get ``unassigned``. Default: the thesis PBE0 bins for V (0–0.2 V5+, 0.8–1.2 V4+,
    1.8–2.2 V3+)."""
    moments = np.abs(np.asarray(magmoms, dtype=float))
    states = np.full(moments.shape, unassigned, dtype=int)
    for lower, upper, state in bins:
        states[(moments >= lower) & (moments <= upper)] = state
    return states


def validate_oxidation_bins(bins, unit: str = '|m| in μB') -> tuple[tuple[float, float, int], ...]:
    """Bins as ``((lower, upper, state), ...)`` with 0 <= lower < upper and no overlaps; raises otherwise. ``unit``
    names the binned quantity in the messages (Bader charges: ``'charge in e'``)."""
    try:
        parsed = tuple((float(lo), float(hi), int(state)) for lo, hi, state in bins)
    except (TypeError, ValueError) as exc:
        raise AnalysisInputError(
            f'oxidation-state bins {bins!r} are not (lower, upper, state) triples ({exc}); give e.g. '
            f'[[0.0, 0.2, 5], [0.8, 1.2, 4], [1.8, 2.2, 3]] ({unit}).'
        ) from exc
    if not parsed:
        raise AnalysisInputError('no oxidation-state bins given; give at least one (lower, upper, state) triple.')
    for lo, hi, state in parsed:
        if not 0.0 <= lo < hi:
            raise AnalysisInputError(f'bin ({lo}, {hi}, {state}) needs 0 <= lower < upper ({unit}); fix its bounds.')
    ordered = sorted(parsed)
    for (lo1, hi1, s1), (lo2, hi2, s2) in zip(ordered, ordered[1:]):
        if lo2 < hi1:
            value = 'moment' if 'μB' in unit else 'value'
            raise AnalysisInputError(
                f'bins ({lo1}, {hi1}, {s1}) and ({lo2}, {hi2}, {s2}) overlap; make each {value} fall in one bin.'
            )
    return parsed


def oxidation_state_counts(
    symbols: t.Sequence[str], magmoms: np.ndarray, element: str, bins: t.Sequence[tuple[float, float, int]]
) -> dict[str, int]:
    """Atoms of ``element`` in each oxidation state of ``bins`` (keys ``str(state)``) and ``"unassigned"`` (moments in
    no bin), for one frame with per-atom moments ``magmoms`` (μB; the sign is ignored). Bader charges of a cation
    (positive, e) are binned the same way."""
    mask = np.asarray(symbols) == element
    states = oxidation_states_from_magmoms(np.asarray(magmoms)[mask], bins, unassigned=0)
    counts = {str(state): int(np.sum(states == state)) for _, _, state in bins}
    counts['unassigned'] = int(np.sum(states == 0))
    return counts


# ---------------------------------------------------------------------------------------------------- top level


def analyse_structure(
    atoms: Atoms,
    cutoffs: dict | None = None,
    formers: t.Sequence[str] = ('P', 'Fe'),
    anions: t.Sequence[str] = ('O', 'S'),
    rdf: RDF | None = None,
    rings: bool = True,
    peaks: bool = True,
) -> dict:
    """The standard structure summary, JSON-ready (string keys, plain floats).

    Keys: ``n_atoms``, ``composition``, ``volume`` (Å³), ``density`` (g/cm³), ``cutoffs`` (those used: defaults from
    g(r) first minima, overridden by ``cutoffs``), ``coordination`` (``{"Fe": {"O": 5.1}}``),
    ``coordination_distribution`` (``{"Fe": {"O": {"5": 0.4}}}``), ``bridging`` (``{"P-O-P": ..}``),
    ``qn`` (per former, fraction per n, all ``anions`` together, network convention: an anion bonded to any two
    ``formers`` bridges), ``qn_conventions`` (network and phosphate (P–O–P only) Qⁿ, labelled with their bridging
    formers, :func:`qn_conventions`), ``qn_by_anion``, ``edge_sharing``,
    ``former_former_bonds``, ``tetrahedral_q`` (mean q per former with four ligands); with ``peaks``:
    ``rdf_peaks`` (first-peak r per partial g(r), Å) and ``sq_peaks`` (maxima of the Lorch-windowed neutron and X-ray
    S(Q) above ``q_min`` = 2π/r_max, Å⁻¹); with ``rings``: ``rings`` (Guttman ring summary, :func:`ring_summary`).
    """
    require_periodic(atoms, 'structure analysis')
    present = sorted(set(atoms.get_chemical_symbols()))
    formers = [f for f in formers if f in present]
    anions_present = [a for a in anions if a in present]
    rdf = rdf or compute_rdf(atoms, r_max=min(8.0, 0.5 * perpendicular_widths(atoms.cell).min()))
    used = default_cutoffs(rdf)
    used.update(_normalise_cutoffs(cutoffs))
    graph = bond_graph(atoms, used)
    coordination = coordination_numbers(graph)
    distribution = {}
    for key in used:
        a, b = _split(key)
        if a in present and b in present:
            distribution.setdefault(a, {})[b] = {str(n): f for n, f in coordination_distribution(graph, a, b).items()}
    qn = {f: {str(n): v for n, v in d.items()} for f, d in qn_speciation(graph, formers, anions_present).items()}
    qn_by_anion = {}
    for anion in anions_present:
        for former, d in qn_speciation(graph, formers, (anion,)).items():
            qn_by_anion.setdefault(former, {})[anion] = {str(n): v for n, v in d.items()}
    ff_counts, ff_cutoffs = former_former_bonds(atoms, formers)
    tetrahedral = {}
    for former in formers:
        q = tetrahedral_order(atoms, former, anions_present or ANIONS)
        if np.isfinite(q).any():
            tetrahedral[former] = float(np.nanmean(q))
    extra = {}
    if peaks:
        extra.update(_peak_summary(rdf))
    if rings:
        extra['rings'] = ring_summary(atoms, used, formers, anions_present) if formers and anions_present else None
    return {
        'n_atoms': len(atoms),
        'composition': {s: int(n) for s, n in rdf.counts.items()},
        'volume': float(atoms.get_volume()),
        'density': density(atoms),
        'cutoffs': used,
        'coordination': coordination,
        'coordination_distribution': distribution,
        'bridging': bridging_statistics(graph, formers, anions_present),
        'qn': qn,
        'qn_conventions': qn_conventions(graph, formers, anions_present),
        'qn_by_anion': qn_by_anion,
        'edge_sharing': edge_sharing(graph, formers, anions_present),
        'former_former_bonds': {'counts': ff_counts, 'cutoffs': ff_cutoffs},
        'tetrahedral_q': tetrahedral,
        'formers': list(formers),
        'anions': list(anions_present),
        **extra,
    }


def _peak_summary(rdf: RDF) -> dict:
    from .scattering import neutron_structure_factor, q_min_for, structure_factor_peaks, xray_structure_factor

    q_min = q_min_for(rdf.edges[-1])
    q = np.arange(0.3, 20.0 + 1e-9, 0.02)
    sq = {'r_max': float(rdf.edges[-1]), 'q_min': float(q_min), 'lorch': True}
    for name, compute in (('S_neutron', neutron_structure_factor), ('S_xray', xray_structure_factor)):
        try:
            sq[name] = structure_factor_peaks(q, compute(rdf, q, lorch=True)[1], q_min)
        except AnalysisInputError:  # an element without tabulated b or f(Q): no peaks for that weighting
            sq[name] = None
    return {'rdf_peaks': rdf_peaks(rdf), 'sq_peaks': sq}


def ring_summary(atoms: Atoms, cutoffs: dict, formers: t.Sequence[str], anions: t.Sequence[str], max_size: int = 24):
    """JSON-ready Guttman ring summary: ``n_rings``, ``size_distribution`` (atoms per ring → rings),
    ``bond_size_distribution`` (ring size per former–anion bond, 0: none up to ``max_size``), ``mean_size``."""
    from .rings import guttman_rings

    result = guttman_rings(atoms, cutoffs, formers, anions, max_size=max_size)
    sizes = result.size_distribution()
    return {
        'formers': list(result.formers),
        'anions': list(result.anions),
        'max_size': max_size,
        'n_rings': int(len(result.rings)),
        'size_distribution': {str(k): v for k, v in sizes.items()},
        'bond_size_distribution': {str(k): v for k, v in result.bond_size_distribution().items()},
        'mean_size': float(result.sizes.mean()) if len(result.sizes) else None,
        'n_wrapping': int(result.n_wrapping),
    }

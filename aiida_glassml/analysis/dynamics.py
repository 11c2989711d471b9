"""Ion dynamics from MD trajectories: MSD, diffusion, Arrhenius, conductivity, van Hove and α2.

Pure numpy/scipy; no AiiDA imports. Units: length Å, time ps, temperature K, D in Å²/ps (1 Å²/ps = 1e-4 cm²/s),
conductivity S/cm.

A :class:`Trajectory` holds positions as a ``(n_frames, n_atoms, 3)`` array (float32 is enough and halves memory;
an ``np.memmap`` works too, so trajectories larger than memory are read in per-atom slices). Every time-correlation
is computed per chunk of atoms of one species: the chunk is unwrapped, corrected for centre-of-mass drift and
correlated along time by FFT, so the extra memory is a few chunks, not copies of the trajectory.
"""

from __future__ import annotations

import dataclasses
import math
import typing as t

import numpy as np
import scipy.fft

from .errors import AnalysisInputError, NonPeriodicCellError, TrajectoryMismatchError

#: Boltzmann constant, eV/K
KB_EV = 8.617333262e-5
#: Boltzmann constant, J/K
KB_J = 1.380649e-23
#: elementary charge, C
ELEMENTARY_CHARGE = 1.602176634e-19
#: cm²/s per Å²/ps
CM2_S_PER_A2_PS = 1.0e-4
#: atoms per chunk in the per-atom passes: small enough to stay in cache-sized FFT batches
DEFAULT_CHUNK_ATOMS = 128
#: longest step between frames, as a fraction of the cell, that minimum-image unwrapping accepts. It cannot see a
#: step beyond half a cell (it looks like a wrap the other way); steps this close to that limit mean some probably
#: went beyond it (a decimated or sparsely dumped trajectory).
MAX_UNWRAP_STEP_FRACTION = 0.35
#: trajectory files larger than this (bytes) are streamed into a float32 memmap by :func:`read_trajectory`
MEMMAP_THRESHOLD_BYTES = 256 * 2**20


class TrajectoryError(AnalysisInputError):
    """A trajectory that cannot be analysed as given (uneven times, wrong shapes, unknown species, ...)."""


class PeriodicCellError(NonPeriodicCellError, TrajectoryError):
    """A periodic cell is required (unwrapping, distinct van Hove, volume) but the trajectory has none."""


class UnwrapError(TrajectoryError):
    """Wrapped positions whose steps between frames are too long to unwrap by minimum image."""


class TimeWindowError(AnalysisInputError):
    """A requested time, lag or fit window lies outside the trajectory."""


class DiffusiveRegimeError(AnalysisInputError):
    """No diffusive regime (log-log MSD slope near 1) was found where one was asked to be detected."""


class ArrheniusError(AnalysisInputError):
    """Too few temperatures (or invalid diffusivities) for an Arrhenius fit."""


# ----------------------------------------------------------------------------------------------------------------
# Trajectory container
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Trajectory:
    """Positions of a fixed set of atoms over evenly spaced frames.

    :param positions: ``(n_frames, n_atoms, 3)`` Å; wrapped into the cell (``wrapped=True``) or already unwrapped.
    :param symbols: ``(n_atoms,)`` chemical symbols, the same order in every frame.
    :param times: ``(n_frames,)`` ps, evenly spaced.
    :param cell: ``(3, 3)`` or ``(n_frames, 3, 3)`` Å, rows are lattice vectors; ``None`` for no periodic cell.
    :param images: optional ``(n_frames, n_atoms, 3)`` integer image flags; when given, unwrapping uses them.
    :param wrapped: whether ``positions`` are wrapped (and need unwrapping by image flags or minimum-image steps).
    :param masses: optional ``(n_atoms,)`` amu, for the centre of mass; defaults to standard atomic masses.
    """

    positions: t.Any
    symbols: np.ndarray
    times: np.ndarray
    cell: np.ndarray | None = None
    images: t.Any = None
    wrapped: bool = True
    masses: np.ndarray | None = None

    def __post_init__(self):
        self.symbols = np.asarray(self.symbols).astype(str)
        self.times = np.asarray(self.times, dtype=float)
        shape = getattr(self.positions, 'shape', None)
        if shape is None or len(shape) != 3 or shape[2] != 3:
            raise TrajectoryError(
                f'positions must have shape (n_frames, n_atoms, 3), got {shape}. Stack frames with '
                '`Trajectory.from_frames` if you have a list of per-frame arrays.'
            )
        n_frames, n_atoms, _ = shape
        if len(self.symbols) != n_atoms:
            raise TrajectoryError(f'{len(self.symbols)} symbols for {n_atoms} atoms; give one symbol per atom.')
        if len(self.times) != n_frames:
            raise TrajectoryError(f'{len(self.times)} times for {n_frames} frames; give one time (ps) per frame.')
        if n_frames < 2:
            raise TrajectoryError('a trajectory needs at least 2 frames for any time correlation.')
        steps = np.diff(self.times)
        if np.any(steps <= 0) or not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
            raise TrajectoryError(
                'frame times must be evenly spaced and increasing (FFT correlations assume it); '
                f'found steps between {steps.min():g} and {steps.max():g} ps. Drop or resample uneven frames.'
            )
        if self.cell is not None:
            self.cell = np.asarray(self.cell, dtype=float)
            if self.cell.shape not in ((3, 3), (n_frames, 3, 3)):
                raise TrajectoryError(f'cell must be (3, 3) or (n_frames, 3, 3), got {self.cell.shape}.')
            volumes = np.abs(np.linalg.det(self.cell))
            if np.any(volumes < 1e-6):
                self.cell = None
        if self.images is not None and getattr(self.images, 'shape', None) != shape:
            raise TrajectoryError(f'images must have the shape of positions {shape}, got {self.images.shape}.')
        if self.masses is None:
            from ase.data import atomic_masses, atomic_numbers

            unknown = sorted({s for s in self.symbols if s not in atomic_numbers})
            if unknown:
                raise TrajectoryError(f'unknown chemical symbols {unknown}; give real element symbols or `masses`.')
            self.masses = np.array([atomic_masses[atomic_numbers[s]] for s in self.symbols])
        else:
            self.masses = np.asarray(self.masses, dtype=float)

    @property
    def n_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.positions.shape[1]

    @property
    def timestep(self) -> float:
        """Time between frames, ps."""
        return float(self.times[1] - self.times[0])

    @property
    def species(self) -> list[str]:
        """Species in order of first appearance."""
        _, first = np.unique(self.symbols, return_index=True)
        return [str(self.symbols[i]) for i in sorted(first)]

    @property
    def is_periodic(self) -> bool:
        return self.cell is not None

    def volume(self) -> float:
        """Mean cell volume, Å³."""
        cell = self.require_cell('a volume')
        return float(np.mean(np.abs(np.linalg.det(cell))))

    def require_cell(self, purpose: str) -> np.ndarray:
        if self.cell is None:
            raise PeriodicCellError(
                f'{purpose} needs a periodic cell but this trajectory has none (cell missing or zero volume). '
                'Give `cell=` (Å, rows are lattice vectors) or read a file that carries the box.'
            )
        return self.cell

    def indices(self, species: str) -> np.ndarray:
        index = np.flatnonzero(self.symbols == species)
        if index.size == 0:
            raise TrajectoryError(f'species {species!r} is not in the trajectory; it has {self.species}.')
        return index

    def frame_of_time(self, time_ps: float, what: str = 'time') -> int:
        """Frame index of a lag or time (ps) measured from the first frame; raises if outside the trajectory."""
        total = self.times[-1] - self.times[0]
        if not (0 <= time_ps <= total * (1 + 1e-9)):
            raise TimeWindowError(
                f'{what} {time_ps:g} ps is outside the trajectory, which spans 0 to {total:g} ps '
                f'({self.n_frames} frames every {self.timestep:g} ps). Choose a {what} inside that range.'
            )
        return int(round(time_ps / self.timestep))

    @classmethod
    def from_frames(cls, frames: t.Sequence, times=None, timestep_ps: float | None = None, wrapped: bool = True,
                    dtype=np.float32) -> Trajectory:  # fmt: skip
        """Build from ASE ``Atoms`` frames; every frame must hold the same atoms in the same order."""
        if len(frames) == 0:
            raise TrajectoryError('no frames given.')
        symbols = np.array(frames[0].get_chemical_symbols())
        for index, atoms in enumerate(frames):
            if len(atoms) != len(symbols):
                raise TrajectoryMismatchError(
                    f'frame {index} has {len(atoms)} atoms but frame 0 has {len(symbols)}: the atom count varies. '
                    'Analyse only frames with a fixed set of atoms (e.g. without deposited/evaporated atoms).'
                )
            if not np.array_equal(atoms.get_chemical_symbols(), symbols):
                raise TrajectoryMismatchError(
                    f'frame {index} lists the atoms in a different order than frame 0. Sort every frame by atom id '
                    '(LAMMPS: `dump_modify sort id`) so atom i is the same atom in all frames.'
                )
        positions = np.empty((len(frames), len(symbols), 3), dtype=dtype)
        for index, atoms in enumerate(frames):
            positions[index] = atoms.positions
        cells = np.array([atoms.cell.array for atoms in frames])
        periodic = all(atoms.pbc.all() for atoms in frames)
        cell = None
        if periodic:
            cell = cells[0] if np.allclose(cells, cells[0]) else cells
        if times is None:
            if timestep_ps is None:
                raise TrajectoryError('give `times` (ps per frame) or `timestep_ps` (ps between frames).')
            times = np.arange(len(frames)) * float(timestep_ps)
        masses = frames[0].get_masses()
        return cls(positions=positions, symbols=symbols, times=times, cell=cell, wrapped=wrapped, masses=masses)


# ----------------------------------------------------------------------------------------------------------------
# Unwrapping and drift
# ----------------------------------------------------------------------------------------------------------------


def _cells_per_frame(cell: np.ndarray, n_frames: int) -> np.ndarray:
    return np.broadcast_to(cell, (n_frames, 3, 3)) if cell.ndim == 2 else cell


def unwrap_positions(positions: np.ndarray, cell: np.ndarray | None, images: np.ndarray | None = None) -> np.ndarray:
    """Unwrapped float64 positions of ``(n_frames, n_atoms, 3)`` wrapped positions.

    With image flags: ``r + n·h``. Without: the minimum-image step between consecutive frames is taken in fractional
    coordinates and converted with the current frame's cell (so an atom at fixed fractional coordinates stays put
    under NPT). Steps longer than half a cell between frames cannot be told apart from wrapping, so a step longer
    than :data:`MAX_UNWRAP_STEP_FRACTION` of the cell raises :class:`UnwrapError` instead of giving a wrong MSD.
    """
    positions = np.asarray(positions, dtype=float)
    if cell is None:
        raise PeriodicCellError(
            'unwrapping wrapped coordinates needs a periodic cell but none was given. Give the cell, or pass '
            '`wrapped=False` if the coordinates are already unwrapped.'
        )
    n_frames = positions.shape[0]
    if images is not None:
        if cell.ndim == 2:
            return positions + np.asarray(images, dtype=float) @ cell
        return positions + np.einsum('fai,fij->faj', np.asarray(images, dtype=float), cell)
    if cell.ndim == 2 and np.allclose(cell, np.diag(np.diag(cell))):
        # Orthorhombic: fractional steps by division, no matrix products (the common case, and the fast one).
        box = np.diag(cell)
        cartesian = np.diff(positions, axis=0)
        cartesian /= box
        cartesian -= np.rint(cartesian)
        _check_unwrap_steps(cartesian, box)
        cartesian *= box
    elif cell.ndim == 2:
        fractional = positions @ np.linalg.inv(cell)
        step = np.diff(fractional, axis=0)
        step -= np.rint(step)
        _check_unwrap_steps(step, np.linalg.norm(cell, axis=1))
        cartesian = step @ cell
    else:
        cells = _cells_per_frame(cell, n_frames)
        fractional = np.einsum('fai,fij->faj', positions, np.linalg.inv(cells))
        step = np.diff(fractional, axis=0)
        step -= np.rint(step)
        _check_unwrap_steps(step, np.linalg.norm(cells, axis=2).min(axis=0))
        cartesian = np.einsum('fai,fij->faj', step, cells[1:])
    unwrapped = np.empty_like(positions)
    unwrapped[0] = positions[0]
    np.cumsum(cartesian, axis=0, out=unwrapped[1:])
    unwrapped[1:] += positions[0]
    return unwrapped


def _check_unwrap_steps(fractional_steps: np.ndarray, lengths: np.ndarray) -> None:
    """Raise :class:`UnwrapError` if a minimum-image step (fractional, already reduced to [-0.5, 0.5]) is longer
    than :data:`MAX_UNWRAP_STEP_FRACTION` of the cell along any axis."""
    if fractional_steps.size == 0:
        return
    largest = np.abs(fractional_steps).max(axis=(0, 1))
    if np.any(largest > MAX_UNWRAP_STEP_FRACTION):
        axis = int(np.argmax(largest))
        raise UnwrapError(
            f'wrapped positions jump by up to {largest[axis] * lengths[axis]:.1f} Å along cell vector {axis} between '
            f'consecutive frames (half the cell is {0.5 * lengths[axis]:.1f} Å): minimum-image unwrapping cannot '
            'tell such steps from crossing the boundary, so the MSD would be wrong. The trajectory is probably '
            'decimated or dumped too rarely. Store image flags (an `images` array in the TrajectoryData, or '
            '`ix iy iz` in the LAMMPS dump), unwrapped coordinates (`xu yu zu`, wrapped=False), or a denser '
            'trajectory.'
        )


def check_unwrappable(traj: Trajectory, chunk_atoms: int = 512) -> None:
    """Raise :class:`UnwrapError` now if a wrapped trajectory without image flags has steps too long for
    minimum-image unwrapping (see :func:`unwrap_positions`); one pass over per-atom chunks, nothing kept."""
    if not traj.wrapped or traj.images is not None or traj.cell is None:
        return
    for start in range(0, traj.n_atoms, chunk_atoms):
        unwrap_positions(traj.positions[:, start : start + chunk_atoms, :], traj.cell)


def _species_chunks(traj: Trajectory, species: t.Iterable[str], chunk_atoms: int):
    for name in species:
        index = traj.indices(name)
        for start in range(0, index.size, chunk_atoms):
            yield name, index[start : start + chunk_atoms]


def _load_unwrapped(traj: Trajectory, index: np.ndarray, images: np.ndarray | None = None) -> np.ndarray:
    """Unwrapped float64 positions of atoms ``index`` over all frames, ``(n_frames, len(index), 3)``.

    ``images`` (whole trajectory, integer) overrides ``traj.images``: the image counts found by a previous
    minimum-image pass, so the second pass only adds ``n·h`` instead of unwrapping again."""
    chunk = np.asarray(traj.positions[:, index, :], dtype=float)
    if not traj.wrapped:
        return chunk
    cell = traj.require_cell('unwrapping wrapped coordinates (pass `wrapped=False` if they are already unwrapped)')
    source = images if images is not None else traj.images
    if source is not None and cell.ndim == 2:
        flags = np.asarray(source[:, index, :], dtype=float)
        if np.allclose(cell, np.diag(np.diag(cell))):
            flags *= np.diag(cell)
            chunk += flags
            return chunk
        chunk += flags @ cell
        return chunk
    return unwrap_positions(chunk, cell, None if source is None else np.asarray(source[:, index, :]))


def _image_counts(wrapped: np.ndarray, unwrapped: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Integer image counts n with unwrapped = wrapped + n·h (constant cell)."""
    return np.rint((unwrapped - wrapped) @ np.linalg.inv(cell)).astype(np.int16)


def species_displacement_sums(traj: Trajectory, chunk_atoms: int = DEFAULT_CHUNK_ATOMS, cache_images: bool = False):
    """Per-frame centre-of-mass displacement ``(n_frames, 3)`` and per-species sums of unwrapped displacements
    ``{species: (n_frames, 3)}`` (for the collective charge displacement), in one pass over per-atom chunks.

    With ``cache_images`` (wrapped trajectory, constant cell, no image flags) also returns the int16 image counts
    found by minimum-image unwrapping (half the size of a float32 trajectory), else ``None``."""
    weighted = np.zeros((traj.n_frames, 3))
    sums = {}
    cache = None
    if cache_images and traj.wrapped and traj.images is None and traj.cell is not None and traj.cell.ndim == 2:
        cache = np.zeros(traj.positions.shape, dtype=np.int16)
    for name, index in _species_chunks(traj, traj.species, chunk_atoms):
        chunk = _load_unwrapped(traj, index)
        if cache is not None:
            cache[:, index, :] = _image_counts(np.asarray(traj.positions[:, index, :], dtype=float), chunk, traj.cell)
        chunk -= chunk[0]
        weighted += np.einsum('fai,a->fi', chunk, traj.masses[index])
        sums[name] = sums.get(name, 0.0) + chunk.sum(axis=1)
    return weighted / traj.masses.sum(), sums, cache


# ----------------------------------------------------------------------------------------------------------------
# MSD by FFT
# ----------------------------------------------------------------------------------------------------------------


def msd_fft(x: np.ndarray) -> np.ndarray:
    """All-origin MSD of each series in ``x`` of shape ``(n_frames, n_series, dim)``; returns ``(n_series, n_frames)``.

    MSD(m) = S1(m) - 2 S2(m) with S2 the position autocorrelation by FFT (zero-padded) and S1 from cumulative sums
    of |r|², both averaged over the ``n_frames - m`` origins. Each series' mean is removed first so that float32
    FFTs keep their precision on long trajectories.
    """
    n_frames = x.shape[0]
    work = np.float32 if x.dtype == np.float32 else np.float64
    centred = np.asarray(x, dtype=float) - np.mean(x, axis=0, dtype=float)
    squared = np.einsum('fsi,fsi->sf', centred, centred)  # (n_series, n_frames), float64
    csum = np.cumsum(squared, axis=1)
    rsum = np.cumsum(squared[:, ::-1], axis=1)
    total = csum[:, -1:]
    counts = np.arange(n_frames, 0, -1, dtype=float)
    # S1(m) = [sum_{k<N-m} r(k)^2 + sum_{k>=m} r(k)^2] / (N - m)
    head = np.concatenate([total, total - rsum[:, :-1]], axis=1)  # sum_{k<N-m} r(k)^2
    tail = np.concatenate([total, total - csum[:, :-1]], axis=1)  # sum_{k>=m} r(k)^2
    s1 = (head + tail) / counts
    n_fft = scipy.fft.next_fast_len(2 * n_frames, real=True)
    series = np.ascontiguousarray(np.moveaxis(centred.astype(work, copy=False), 0, -1))  # (n_series, dim, n_frames)
    spectrum = scipy.fft.rfft(series, n=n_fft, axis=-1)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    del spectrum
    autocorrelation = scipy.fft.irfft(power, n=n_fft, axis=-1)[..., :n_frames]
    s2 = autocorrelation.sum(axis=1, dtype=float) / counts
    msd = s1 - 2 * s2
    msd[:, 0] = 0.0
    return np.maximum(msd, 0.0)


def msd_direct(x: np.ndarray, lags: t.Iterable[int]) -> np.ndarray:
    """All-origin MSD at the given lags by direct differences, ``(n_series, len(lags))``: a reference for tests."""
    x = np.asarray(x, dtype=float)
    out = []
    for lag in lags:
        d = x[lag:] - x[: x.shape[0] - lag]
        out.append(np.mean(np.sum(d * d, axis=-1), axis=0))
    return np.array(out).T


# ----------------------------------------------------------------------------------------------------------------
# One pass: MSD, van Hove self part, α2
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DynamicsResult:
    """Time correlations of one trajectory. Arrays are per species (dicts keyed by symbol)."""

    times: np.ndarray  # (n_frames,) lag times, ps
    msd: dict[str, np.ndarray]  # Å²
    counts: dict[str, int]
    per_atom_msd: np.ndarray | None = None  # (n_atoms, n_frames) float32, Å², trajectory atom order
    com_drift: np.ndarray | None = None  # (n_frames, 3) Å, removed centre-of-mass displacement
    species_displacement: dict[str, np.ndarray] | None = None  # (n_frames, 3) Å, summed drift-corrected displacement
    van_hove_r: np.ndarray | None = None  # (n_bins,) bin centres, Å
    van_hove_edges: np.ndarray | None = None
    van_hove_times: np.ndarray | None = None  # (n_lags,) ps
    van_hove_self: dict[str, np.ndarray] | None = None  # G_s(r, t), (n_lags, n_bins), Å⁻³
    alpha2_times: np.ndarray | None = None  # (n_lags,) ps
    alpha2: dict[str, np.ndarray] | None = None

    def radial_van_hove_self(self, species: str) -> np.ndarray:
        """4πr²G_s(r,t): the probability density of the displacement length, integrating to 1 over r."""
        edges = self.van_hove_edges
        shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
        return self.van_hove_self[species] * shell / np.diff(edges)


def default_alpha2_lags(n_frames: int, per_decade: int = 10, max_fraction: float = 0.5) -> np.ndarray:
    """Log-spaced lag frames from 1 to ``max_fraction`` of the trajectory."""
    top = max(1, int(n_frames * max_fraction))
    lags = np.unique(np.round(np.logspace(0, np.log10(top), max(2, int(per_decade * np.log10(top)) + 1))).astype(int))
    return lags[(lags >= 1) & (lags < n_frames)]


def _origin_stride(n_frames: int, lag: int, max_origins: int | None) -> int:
    available = n_frames - lag
    if max_origins is None or available <= max_origins:
        return 1
    return int(math.ceil(available / max_origins))


def analyse_dynamics(
    traj: Trajectory,
    *,
    species: t.Sequence[str] | None = None,
    remove_drift: bool = True,
    per_atom: bool = False,
    van_hove_times: t.Sequence[float] | None = None,
    van_hove_r_max: float = 8.0,
    van_hove_dr: float = 0.05,
    van_hove_origin_stride: int = 1,
    alpha2_lag_frames: t.Sequence[int] | None = None,
    alpha2_max_origins: int | None = 1000,
    chunk_atoms: int = DEFAULT_CHUNK_ATOMS,
    progress: t.Callable[[int], None] | None = None,
) -> DynamicsResult:
    """All-origin MSD (FFT) per species and optionally per atom, plus the self van Hove function at
    ``van_hove_times`` (ps) and the non-Gaussian parameter α2 at ``alpha2_lag_frames`` (``[]`` to skip).

    The trajectory is processed in chunks of ``chunk_atoms`` atoms of one species; each chunk is unwrapped and
    drift-corrected once and used for all three quantities. ``progress(n)`` is called with the atoms done per chunk.
    """
    species = list(species) if species is not None else traj.species
    for name in species:
        traj.indices(name)
    n_frames = traj.n_frames
    lag_times = traj.times - traj.times[0]

    vh_frames = []
    if van_hove_times is not None:
        vh_frames = [traj.frame_of_time(float(value), 'van Hove time') for value in van_hove_times]
        if any(frame == 0 for frame in vh_frames):
            raise TimeWindowError('van Hove times must be > 0 ps (G_s at t = 0 is a delta function).')
    if alpha2_lag_frames is None:
        alpha2_lag_frames = default_alpha2_lags(n_frames)
    alpha2_lag_frames = np.asarray(alpha2_lag_frames, dtype=int)
    if alpha2_lag_frames.size and (alpha2_lag_frames.min() < 1 or alpha2_lag_frames.max() >= n_frames):
        raise TimeWindowError(
            f'α2 lags must be between 1 and {n_frames - 1} frames (the trajectory has {n_frames} frames).'
        )

    # First pass: centre-of-mass drift and the summed displacement per species (collective charge displacement).
    com, sums, image_cache = species_displacement_sums(traj, chunk_atoms, cache_images=True)
    if remove_drift:
        sums = {name: value - traj.indices(name).size * com for name, value in sums.items()}
    else:
        com = np.zeros((n_frames, 3))

    edges = np.arange(0.0, van_hove_r_max + 0.5 * van_hove_dr, van_hove_dr)
    n_bins = edges.size - 1
    msd_sum = {name: np.zeros(n_frames) for name in species}
    vh_counts = {name: np.zeros((len(vh_frames), n_bins)) for name in species}
    vh_norm = {name: np.zeros(len(vh_frames)) for name in species}
    r2_sum = {name: np.zeros(alpha2_lag_frames.size) for name in species}
    r4_sum = {name: np.zeros(alpha2_lag_frames.size) for name in species}
    a2_norm = {name: np.zeros(alpha2_lag_frames.size) for name in species}
    per_atom_msd = np.zeros((traj.n_atoms, n_frames), dtype=np.float32) if per_atom else None
    work = np.float32 if np.asarray(traj.positions[:1, :1]).dtype == np.float32 else np.float64

    for name, index in _species_chunks(traj, species, chunk_atoms):
        chunk = _load_unwrapped(traj, index, image_cache)
        if remove_drift:
            chunk -= com[:, None, :]
        chunk = chunk.astype(work, copy=False)
        msd = msd_fft(chunk)
        msd_sum[name] += msd.sum(axis=0)
        if per_atom_msd is not None:
            per_atom_msd[index] = msd
        for k, lag in enumerate(vh_frames):
            # Slices, not index arrays: views instead of gathered copies.
            d = chunk[lag::van_hove_origin_stride] - chunk[: n_frames - lag : van_hove_origin_stride]
            r = np.sqrt(np.einsum('oai,oai->oa', d, d)).ravel()
            r /= van_hove_dr
            bins = r.astype(np.int32)
            vh_counts[name][k] += np.bincount(bins, minlength=n_bins)[:n_bins]
            vh_norm[name][k] += r.size
        for k, lag in enumerate(alpha2_lag_frames):
            stride = _origin_stride(n_frames, int(lag), alpha2_max_origins)
            d = chunk[lag::stride] - chunk[: n_frames - lag : stride]
            r2 = np.einsum('oai,oai->oa', d, d).astype(float)
            r2_sum[name][k] += r2.sum()
            r4_sum[name][k] += np.square(r2).sum()
            a2_norm[name][k] += r2.size
        if progress is not None:
            progress(index.size)

    counts = {name: int(traj.indices(name).size) for name in species}
    result = DynamicsResult(
        times=lag_times,
        msd={name: msd_sum[name] / counts[name] for name in species},
        counts=counts,
        per_atom_msd=per_atom_msd,
        com_drift=com,
        species_displacement=sums,
    )
    if vh_frames:
        shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
        result.van_hove_edges = edges
        result.van_hove_r = 0.5 * (edges[1:] + edges[:-1])
        result.van_hove_times = np.array([lag_times[f] for f in vh_frames])
        result.van_hove_self = {name: vh_counts[name] / vh_norm[name][:, None] / shell for name in species}
    if alpha2_lag_frames.size:
        result.alpha2_times = lag_times[alpha2_lag_frames]
        alpha2 = {}
        for name in species:
            mean_r2 = r2_sum[name] / a2_norm[name]
            mean_r4 = r4_sum[name] / a2_norm[name]
            with np.errstate(divide='ignore', invalid='ignore'):
                alpha2[name] = 3.0 * mean_r4 / (5.0 * mean_r2**2) - 1.0
        result.alpha2 = alpha2
    return result


def mean_square_displacement(traj: Trajectory, **kwargs) -> DynamicsResult:
    """All-origin MSD per species (and per atom with ``per_atom=True``); see :func:`analyse_dynamics`."""
    kwargs.setdefault('alpha2_lag_frames', [])
    return analyse_dynamics(traj, **kwargs)


def non_gaussian_parameter(traj: Trajectory, lag_frames=None, **kwargs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """α2(t) = 3<Δr⁴>/(5<Δr²>²) - 1 per species at log-spaced lags: returns (times ps, {species: α2})."""
    result = analyse_dynamics(traj, alpha2_lag_frames=lag_frames, **kwargs)
    return result.alpha2_times, result.alpha2


def van_hove_self(traj: Trajectory, times_ps: t.Sequence[float], **kwargs) -> DynamicsResult:
    """Self van Hove G_s(r, t) at ``times_ps`` averaged over all time origins; see :func:`analyse_dynamics`."""
    kwargs.setdefault('alpha2_lag_frames', [])
    return analyse_dynamics(traj, van_hove_times=times_ps, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Distinct van Hove
# ----------------------------------------------------------------------------------------------------------------


def _cross_distances(a: np.ndarray, b: np.ndarray, cell: np.ndarray, r_max: float) -> tuple[np.ndarray, ...]:
    """(i, j, d) for all minimum-image pairs with d < r_max between point sets a and b."""
    if np.allclose(cell, np.diag(np.diag(cell))):
        from scipy.spatial import cKDTree

        box = np.diag(cell)
        wa = np.mod(a, box)
        wb = np.mod(b, box)
        wa[wa >= box] = 0.0
        wb[wb >= box] = 0.0
        tree_a = cKDTree(wa, boxsize=box)
        tree_b = cKDTree(wb, boxsize=box)
        pairs = tree_a.sparse_distance_matrix(tree_b, r_max, output_type='ndarray')
        return pairs['i'], pairs['j'], pairs['v']
    inverse = np.linalg.inv(cell)
    fa, fb = a @ inverse, b @ inverse
    out_i, out_j, out_d = [], [], []
    for start in range(0, len(a), 256):
        diff = fb[None, :, :] - fa[start : start + 256, None, :]
        diff -= np.rint(diff)
        dist = np.linalg.norm(diff @ cell, axis=-1)
        i, j = np.nonzero(dist < r_max)
        out_i.append(i + start)
        out_j.append(j)
        out_d.append(dist[i, j])
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)


def _max_cutoff(cell: np.ndarray) -> float:
    """Half the shortest distance between opposite cell faces: the largest r for a minimum-image histogram."""
    volume = abs(np.linalg.det(cell))
    widths = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return 0.5 * min(widths)


def van_hove_distinct(
    traj: Trajectory,
    times_ps: t.Sequence[float],
    species_a: str,
    species_b: str | None = None,
    *,
    r_max: float = 8.0,
    dr: float = 0.05,
    n_origins: int = 20,
) -> dict[str, np.ndarray]:
    """Distinct van Hove function normalised as g_d(r, t) = G_d(r, t)/ρ_B: the density of B atoms at distance r
    at time t0 + t from where an A atom was at t0 (the atom itself excluded), divided by the mean B density. At
    t = 0 it is the partial g_AB(r); at long times it tends to 1. Averaged over ``n_origins`` evenly spaced origins.

    Returns ``{'r', 'edges', 'times', 'g_distinct'}`` with ``g_distinct`` of shape ``(n_times, n_bins)``.
    """
    cell = traj.require_cell('the distinct van Hove function')
    species_b = species_b or species_a
    index_a, index_b = traj.indices(species_a), traj.indices(species_b)
    limit = _max_cutoff(cell if cell.ndim == 2 else cell[0])
    if r_max > limit:
        raise TrajectoryError(
            f'r_max {r_max:g} Å exceeds half the cell width ({limit:.3f} Å); minimum-image distances beyond it are '
            'wrong. Lower r_max.'
        )
    frames = [traj.frame_of_time(float(value), 'van Hove time') for value in times_ps]
    edges = np.arange(0.0, r_max + 0.5 * dr, dr)
    n_bins = edges.size - 1
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    same = species_a == species_b
    g = np.zeros((len(frames), n_bins))
    for k, lag in enumerate(frames):
        starts = np.unique(np.linspace(0, traj.n_frames - 1 - lag, min(n_origins, traj.n_frames - lag)).astype(int))
        for start in starts:
            frame_cell = cell if cell.ndim == 2 else cell[start + lag]
            a = np.asarray(traj.positions[start, index_a], dtype=float)
            b = np.asarray(traj.positions[start + lag, index_b], dtype=float)
            i, j, d = _cross_distances(a, b, frame_cell, r_max)
            if same:
                keep = i != j
                d = d[keep]
            density_b = (index_b.size - (1 if same else 0)) / abs(np.linalg.det(frame_cell))
            hist = np.bincount(np.minimum((d / dr).astype(np.int64), n_bins), minlength=n_bins + 1)[:n_bins]
            g[k] += hist / (index_a.size * density_b * shell)
        g[k] /= len(starts)
    return {
        'r': 0.5 * (edges[1:] + edges[:-1]),
        'edges': edges,
        'times': np.array([traj.times[f] - traj.times[0] for f in frames]),
        'g_distinct': g,
    }


# ----------------------------------------------------------------------------------------------------------------
# Diffusion coefficient
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DiffusionFit:
    D: float  # Å²/ps
    D_err: float  # Å²/ps
    window: tuple[float, float]  # ps
    slope_loglog: float  # mean log-log slope over the window
    intercept: float  # Å²
    auto_window: bool
    error_method: str

    @property
    def D_cm2_s(self) -> float:
        return self.D * CM2_S_PER_A2_PS

    @property
    def D_err_cm2_s(self) -> float:
        return self.D_err * CM2_S_PER_A2_PS

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(D_cm2_s=self.D_cm2_s, D_err_cm2_s=self.D_err_cm2_s, window=list(self.window))
        return data


def loglog_slope(times: np.ndarray, msd: np.ndarray, per_decade: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Local slope d ln MSD / d ln t at log-spaced times (skipping t = 0): returns (times, slopes)."""
    positive = (times > 0) & (msd > 0)
    tt, mm = times[positive], msd[positive]
    if tt.size < 3:
        return tt, np.full(tt.size, np.nan)
    grid = np.logspace(np.log10(tt[0]), np.log10(tt[-1]), max(3, int(per_decade * np.log10(tt[-1] / tt[0])) + 1))
    log_m = np.interp(np.log(grid), np.log(tt), np.log(mm))
    return grid, np.gradient(log_m, np.log(grid))


def fit_diffusion(
    times: np.ndarray,
    msd: np.ndarray,
    window: tuple[float, float] | None = None,
    *,
    per_atom_msd: np.ndarray | None = None,
    dimensions: int = 3,
    slope_tolerance: float = 0.15,
    min_decades: float = 0.3,
    max_lag_fraction: float = 0.5,
) -> DiffusionFit:
    """D from MSD = 2·d·D·t + b over the diffusive regime.

    ``window=(t0, t1)`` (ps) fixes the fit range; otherwise the latest run of log-log slope within
    ``slope_tolerance`` of 1 spanning at least ``min_decades`` (within the first ``max_lag_fraction`` of lags,
    where enough origins remain) is used. The uncertainty is the standard error of the per-atom slopes when
    ``per_atom_msd`` (``(n_atoms, n_frames)``) is given, else the least-squares standard error of the slope (an
    underestimate, since MSD points are correlated).
    """
    times = np.asarray(times, dtype=float)
    msd = np.asarray(msd, dtype=float)
    total = times[-1]
    if window is not None:
        t0, t1 = float(window[0]), float(window[1])
        if not (0 <= t0 < t1 <= total * (1 + 1e-9)):
            raise TimeWindowError(
                f'fit window ({t0:g}, {t1:g}) ps is outside the trajectory lags 0 to {total:g} ps or empty. '
                'Choose 0 <= start < end <= the trajectory length.'
            )
        auto = False
    else:
        limit = max(3, int(times.size * max_lag_fraction))
        grid, slope = loglog_slope(times[:limit], msd[:limit])
        good = np.abs(slope - 1.0) < slope_tolerance
        runs, start = [], None
        for k, flag in enumerate(np.append(good, False)):
            if flag and start is None:
                start = k
            elif not flag and start is not None:
                runs.append((start, k - 1))
                start = None
        runs = [(a, b) for a, b in runs if np.log10(grid[b] / grid[a]) >= min_decades]
        if not runs:
            late = slope[-max(1, slope.size // 4) :] if slope.size else np.array([np.nan])
            raise DiffusiveRegimeError(
                f'no diffusive regime: the log-log MSD slope never stays within {slope_tolerance} of 1 over '
                f'{min_decades} decades (late-time slope ≈ {np.nanmean(late):.2f}). Run longer or hotter, or give '
                'a fit window explicitly.'
            )
        a, b = runs[-1]
        t0, t1 = float(grid[a]), float(grid[b])
        auto = True
    mask = (times >= t0) & (times <= t1)
    if mask.sum() < 3:
        raise TimeWindowError(f'fit window ({t0:g}, {t1:g}) ps holds {mask.sum()} frames; need at least 3.')
    x, y = times[mask], msd[mask]
    coefficients, covariance = np.polyfit(x, y, 1, cov=True) if mask.sum() > 3 else (np.polyfit(x, y, 1), None)
    factor = 2.0 * dimensions
    D = coefficients[0] / factor
    if per_atom_msd is not None:
        slopes = np.polyfit(x, np.asarray(per_atom_msd, dtype=float)[:, mask].T, 1)[0] / factor
        D_err = float(np.std(slopes, ddof=1) / np.sqrt(slopes.size)) if slopes.size > 1 else float('nan')
        method = 'per-atom standard error'
    else:
        D_err = float(np.sqrt(covariance[0, 0]) / factor) if covariance is not None else float('nan')
        method = 'least-squares standard error'
    with np.errstate(divide='ignore', invalid='ignore'):
        positive = (y > 0) & (x > 0)
        slope_ll = float(np.polyfit(np.log(x[positive]), np.log(y[positive]), 1)[0]) if positive.sum() > 1 else np.nan
    return DiffusionFit(
        D=float(D), D_err=D_err, window=(t0, t1), slope_loglog=slope_ll, intercept=float(coefficients[1]),
        auto_window=auto, error_method=method,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Arrhenius
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ArrheniusFit:
    Ea: float  # eV
    Ea_err: float  # eV
    D0: float  # Å²/ps
    D0_err: float
    temperatures: np.ndarray  # K, all points
    D: np.ndarray  # Å²/ps, all points
    fitted: np.ndarray  # bool mask of the points in the fit
    t_min: float | None
    deviation: np.ndarray  # ln(D_obs / D_extrapolated) for every point (0 ± noise in the fit)

    def predict(self, temperatures) -> np.ndarray:
        return self.D0 * np.exp(-self.Ea / (KB_EV * np.asarray(temperatures, dtype=float)))

    def as_dict(self) -> dict:
        return {
            'Ea_eV': self.Ea, 'Ea_err_eV': self.Ea_err, 'D0_A2_ps': self.D0, 'D0_err_A2_ps': self.D0_err,
            'D0_cm2_s': self.D0 * CM2_S_PER_A2_PS, 't_min_K': self.t_min,
            'temperatures_K': self.temperatures.tolist(), 'D_A2_ps': self.D.tolist(),
            'fitted': self.fitted.tolist(), 'ln_deviation': self.deviation.tolist(),
        }  # fmt: skip


def arrhenius_fit(temperatures, D, D_err=None, t_min: float | None = None) -> ArrheniusFit:
    """Fit ln D = ln D0 - Ea/(kB T) (weighted by D_err/D when given).

    ``t_min`` restricts the fit to T >= t_min; ``deviation`` is then ln(D/D_fit) of every point, the
    non-Arrhenius signature of the low-T points below t_min (negative: slower than the high-T extrapolation).
    Ea_err comes from the fit covariance (scaled by the residual scatter when there are more than two points).
    """
    temperatures = np.asarray(temperatures, dtype=float)
    D = np.asarray(D, dtype=float)
    if temperatures.shape != D.shape or temperatures.ndim != 1:
        raise ArrheniusError('temperatures and D must be 1-D arrays of the same length.')
    if np.any(temperatures <= 0) or np.any(~np.isfinite(D)) or np.any(D <= 0):
        raise ArrheniusError('Arrhenius needs temperatures > 0 K and finite D > 0; drop non-diffusive points.')
    fitted = np.ones(temperatures.size, bool) if t_min is None else temperatures >= t_min
    distinct = np.unique(temperatures[fitted]).size
    if distinct < 2:
        where = '' if t_min is None else f' at or above t_min = {t_min:g} K'
        raise ArrheniusError(
            f'an Arrhenius fit needs D at two or more temperatures{where}, got {distinct}. '
            'Add temperatures (or lower t_min).'
        )
    x = 1.0 / (KB_EV * temperatures[fitted])
    y = np.log(D[fitted])
    sigma = None
    if D_err is not None:
        D_err = np.asarray(D_err, dtype=float)
        rel = D_err[fitted] / D[fitted]
        if np.all(np.isfinite(rel)) and np.all(rel > 0):
            sigma = rel
    design = np.vstack([np.ones_like(x), -x]).T
    weights = np.ones_like(x) if sigma is None else 1.0 / sigma
    solution, *_ = np.linalg.lstsq(design * weights[:, None], y * weights, rcond=None)
    ln_d0, Ea = solution
    covariance = np.linalg.inv((design * weights[:, None] ** 2).T @ design)
    dof = x.size - 2
    if dof > 0:
        residual = (y - design @ solution) * weights
        chi2 = float(residual @ residual) / dof
        covariance = covariance * (chi2 if sigma is None else max(chi2, 1.0))
    elif sigma is None:
        covariance = covariance * np.nan  # two points without errors: no uncertainty to give
    Ea_err = float(np.sqrt(covariance[1, 1]))
    D0 = float(np.exp(ln_d0))
    fit = ArrheniusFit(
        Ea=float(Ea), Ea_err=Ea_err, D0=D0, D0_err=D0 * float(np.sqrt(covariance[0, 0])),
        temperatures=temperatures, D=D, fitted=fitted, t_min=t_min, deviation=np.zeros_like(D),
    )  # fmt: skip
    fit.deviation = np.log(D / fit.predict(temperatures))
    return fit


# ----------------------------------------------------------------------------------------------------------------
# Conductivity
# ----------------------------------------------------------------------------------------------------------------


def nernst_einstein_conductivity(D: float, n_ions: int, volume: float, temperature: float, charge: float) -> float:
    """σ_NE = N q² e² D / (V kB T) in S/cm, with D in Å²/ps, V in Å³, T in K and q in units of e."""
    if volume <= 0 or temperature <= 0:
        raise ValueError('Nernst-Einstein needs a positive cell volume (Å³) and temperature (K).')
    d_si = D * 1.0e-8  # Å²/ps -> m²/s
    sigma_si = n_ions * (charge * ELEMENTARY_CHARGE) ** 2 * d_si / (volume * 1.0e-30 * KB_J * temperature)
    return sigma_si * 1.0e-2  # S/m -> S/cm


def collective_msd(displacement: np.ndarray) -> np.ndarray:
    """All-origin MSD of one collective displacement series ``(n_frames, 3)``, e.g. Σ q_i Δr_i(t)."""
    return msd_fft(np.asarray(displacement, dtype=float)[:, None, :])[0]


def haven_ratio(
    result: DynamicsResult, species: str, tracer: DiffusionFit, dimensions: int = 3
) -> dict[str, float]:
    """Haven ratio H_R = D* / D_σ for one mobile species, with D_σ = lim <|Σ_i Δr_i|²> / (2 d N t) from the
    collective (charge) displacement fitted over the tracer fit window. Collective MSDs are noisy: trust H_R only
    from long trajectories."""
    if result.species_displacement is None or species not in result.species_displacement:
        raise ValueError(f'no collective displacement for {species!r}; run analyse_dynamics on a trajectory with it.')
    msd_c = collective_msd(result.species_displacement[species])
    mask = (result.times >= tracer.window[0]) & (result.times <= tracer.window[1])
    slope = np.polyfit(result.times[mask], msd_c[mask], 1)[0]
    d_sigma = slope / (2.0 * dimensions * result.counts[species])
    return {'D_sigma': float(d_sigma), 'haven_ratio': float(tracer.D / d_sigma) if d_sigma > 0 else float('nan')}


# ----------------------------------------------------------------------------------------------------------------
# Reading trajectories
# ----------------------------------------------------------------------------------------------------------------


def remove_scratch_folder(folder: str | None) -> None:
    if folder is not None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def tie_scratch_folder(traj: 'Trajectory', folder: str | None) -> 'Trajectory':
    """Remove ``folder`` (memory-mapped arrays) when ``traj`` is garbage-collected."""
    if folder is not None:
        import shutil
        import weakref

        # the open maps stay valid after the files are unlinked (POSIX), so removal with the Trajectory is safe
        weakref.finalize(traj, shutil.rmtree, folder, True)
    return traj


def read_trajectory(path, format: str | None = None, timestep_ps: float | None = None, *,  # noqa: A002
                    start: int = 0, stop: int | None = None, step: int = 1, memmap: bool | None = None,
                    memmap_path=None, memmap_threshold_bytes: int = MEMMAP_THRESHOLD_BYTES,
                    **reader_kwargs) -> Trajectory:  # fmt: skip
    """Read a trajectory file (LAMMPS dump, extxyz, XDATCAR or any ASE format) into a float32 :class:`Trajectory`.

    Frames are streamed by :func:`aiida_glassml.analysis.io.iter_trajectory` (which checks that every frame holds
    the same atoms in the same order and maps LAMMPS types to elements; ``reader_kwargs`` such as
    ``type_to_element``, ``masses`` or ``data_file`` go to it). ``timestep_ps`` is the time between frames in the
    file (reading every ``step``-th frame multiplies it by ``step``); without it, frame times come from
    ``atoms.info['time']`` (ps) when every frame has one. Image flags in a dump are used for unwrapping; ``xu yu zu``
    dumps are taken as already unwrapped.

    ``memmap``: stream positions (and image flags) frame by frame into raw float32/int32 files and return a
    Trajectory on read-only ``np.memmap`` arrays, so no frame list is held in memory (the analysis reads per-atom
    slices). ``None`` (default) does so when the file is larger than ``memmap_threshold_bytes``. The files go to
    ``memmap_path`` (a path prefix) or to a temporary folder removed when the Trajectory is garbage collected.
    """
    import pathlib

    from .io import iter_trajectory

    if memmap is None:
        memmap = memmap_path is not None or pathlib.Path(path).stat().st_size > memmap_threshold_bytes
    folder = None
    if memmap and memmap_path is None:
        import tempfile

        folder = tempfile.mkdtemp(prefix='glassml-trajectory-')
        memmap_path = pathlib.Path(folder) / 'trajectory'
    positions, images, cells, stamps, first = [], [], [], [], None
    sinks = None
    if memmap:
        memmap_path = pathlib.Path(memmap_path)
        sinks = tuple(open(memmap_path.with_suffix(suffix), 'wb') for suffix in ('.positions.f32', '.images.i32'))
    n_frames, n_images = 0, 0
    try:
        for atoms in iter_trajectory(path, format=format, start=start, stop=stop, step=step, **reader_kwargs):
            first = first or atoms
            frame = np.asarray(atoms.positions, dtype=np.float32)
            flags = np.asarray(atoms.arrays['image'], dtype=np.int32) if 'image' in atoms.arrays else None
            if sinks is None:
                positions.append(frame)
                if flags is not None:
                    images.append(flags)
            else:
                sinks[0].write(frame.tobytes())
                if flags is not None:
                    sinks[1].write(flags.tobytes())
            n_images += flags is not None
            n_frames += 1
            cells.append(atoms.cell.array.copy())
            stamps.append(atoms.info.get('time'))
    except BaseException:
        remove_scratch_folder(folder)
        raise
    finally:
        if sinks is not None:
            for sink in sinks:
                sink.close()
    try:
        if first is None:
            raise TrajectoryError(f'{path}: no frames read; check the file and the --format.')
        if timestep_ps is not None:
            times = np.arange(n_frames) * float(timestep_ps) * step
        elif all(stamp is not None for stamp in stamps):
            times = np.asarray(stamps, dtype=float)
        else:
            raise TrajectoryError(
                f'{path}: frames carry no times; give the time between stored frames (--timestep-ps / timestep_ps).'
            )
        cells = np.array(cells)
        cell = (cells[0] if np.allclose(cells, cells[0]) else cells) if first.pbc.all() else None
        unwrapped = bool(first.info.get('unwrapped', False))
        shape = (n_frames, len(first), 3)
        has_images = n_images == n_frames and not unwrapped
        if sinks is None:
            stacked = np.stack(positions)
            del positions
            image_array = np.stack(images) if has_images else None
        else:
            stacked = np.memmap(memmap_path.with_suffix('.positions.f32'), dtype=np.float32, mode='r', shape=shape)
            image_array = None
            if has_images:
                image_array = np.memmap(memmap_path.with_suffix('.images.i32'), dtype=np.int32, mode='r', shape=shape)
        traj = Trajectory(
            positions=stacked, symbols=np.array(first.get_chemical_symbols()), times=times, cell=cell,
            images=image_array, wrapped=not unwrapped, masses=first.get_masses(),
        )  # fmt: skip
    except BaseException:
        remove_scratch_folder(folder)
        raise
    return tie_scratch_folder(traj, folder)

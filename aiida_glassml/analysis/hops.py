"""Ion hops: an ion hops when it moves more than ``hop_distance`` (3 Å) from its current site.

The site is where the ion started; after a hop the site moves to where the ion arrived. From the hops follow the
hop rate Γ (hops per ion per ps), the jump diffusion coefficient D_jump = <d²>Γ/6 (d: hop length) and the
fraction of concerted hops: hops with another ion hopping within ``concerted_window`` ps (and optionally within
``concerted_distance`` Å). Pure numpy; no AiiDA imports.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .dynamics import TimeWindowError, Trajectory, _load_unwrapped, species_displacement_sums
from .errors import AnalysisInputError


@dataclasses.dataclass
class HopResult:
    species: str
    hop_distance: float  # Å
    n_ions: int
    duration: float  # ps
    atom: np.ndarray  # (n_hops,) trajectory atom index
    time: np.ndarray  # (n_hops,) ps after the first frame
    length: np.ndarray  # (n_hops,) Å, site-to-site distance
    concerted: np.ndarray  # (n_hops,) bool
    concerted_window: float  # ps
    concerted_distance: float | None

    @property
    def n_hops(self) -> int:
        return int(self.atom.size)

    @property
    def rate(self) -> float:
        """Γ: hops per ion per ps."""
        return self.n_hops / (self.n_ions * self.duration)

    @property
    def mean_square_length(self) -> float:
        return float(np.mean(self.length**2)) if self.n_hops else 0.0

    @property
    def D_jump(self) -> float:
        """<d²>Γ/6, Å²/ps."""
        return self.mean_square_length * self.rate / 6.0

    @property
    def concerted_fraction(self) -> float:
        return float(self.concerted.mean()) if self.n_hops else 0.0

    def as_dict(self) -> dict:
        return {
            'species': self.species, 'hop_distance_A': self.hop_distance, 'n_ions': self.n_ions,
            'duration_ps': self.duration, 'n_hops': self.n_hops, 'rate_per_ion_ps': self.rate,
            'mean_hop_length_A': float(np.mean(self.length)) if self.n_hops else 0.0,
            'D_jump_A2_ps': self.D_jump, 'D_jump_cm2_s': self.D_jump * 1e-4,
            'concerted_fraction': self.concerted_fraction, 'concerted_window_ps': self.concerted_window,
            'concerted_distance_A': self.concerted_distance,
        }  # fmt: skip


def detect_hops(
    traj: Trajectory,
    species: str = 'Na',
    hop_distance: float = 3.0,
    *,
    smoothing_ps: float = 0.0,
    concerted_window: float = 1.0,
    concerted_distance: float | None = None,
    remove_drift: bool = True,
) -> HopResult:
    """Find hops of ``species`` ions (see the module docstring).

    ``smoothing_ps`` averages positions over a running window first, so that vibrations straddling the threshold
    do not count as hops (0: no smoothing).
    """
    if hop_distance <= 0:
        raise AnalysisInputError(f'hop_distance must be positive (Å), got {hop_distance}.')
    if concerted_window < 0:
        raise AnalysisInputError(f'concerted_window must be >= 0 ps, got {concerted_window}.')
    index = traj.indices(species)
    duration = float(traj.times[-1] - traj.times[0])
    positions = _load_unwrapped(traj, index)
    if remove_drift:
        com, _, _ = species_displacement_sums(traj)
        positions -= com[:, None, :]
    width = int(round(smoothing_ps / traj.timestep)) if smoothing_ps else 0
    if width >= traj.n_frames:
        raise TimeWindowError(f'smoothing_ps {smoothing_ps:g} is longer than the trajectory ({duration:g} ps).')
    if width > 1:
        kernel = np.cumsum(positions, axis=0)
        kernel[width:] = kernel[width:] - kernel[:-width]
        positions = kernel[width - 1 :] / width
    site = positions[0].copy()
    limit2 = hop_distance**2
    atoms, frames, lengths = [], [], []
    offset = max(width - 1, 0)
    for frame in range(1, positions.shape[0]):
        delta = positions[frame] - site
        d2 = np.einsum('ai,ai->a', delta, delta)
        moved = np.flatnonzero(d2 > limit2)
        if moved.size:
            atoms.append(moved)
            frames.append(np.full(moved.size, frame + offset))
            lengths.append(np.sqrt(d2[moved]))
            site[moved] = positions[frame, moved]
    atom = index[np.concatenate(atoms)] if atoms else np.zeros(0, int)
    frame = np.concatenate(frames) if frames else np.zeros(0, int)
    length = np.concatenate(lengths) if lengths else np.zeros(0)
    time = traj.times[frame] - traj.times[0]
    concerted = _concerted(atom, time, frame, traj, concerted_window, concerted_distance)
    return HopResult(
        species=species, hop_distance=float(hop_distance), n_ions=int(index.size), duration=duration, atom=atom,
        time=time, length=length, concerted=concerted, concerted_window=float(concerted_window),
        concerted_distance=concerted_distance,
    )  # fmt: skip


def _concerted(atom, time, frame, traj, window, distance) -> np.ndarray:
    """A hop is concerted when another ion hops within ``window`` ps (and ``distance`` Å, if given)."""
    n = atom.size
    flags = np.zeros(n, bool)
    if n < 2:
        return flags
    order = np.argsort(time, kind='stable')
    sorted_time = time[order]
    for rank, k in enumerate(order):
        lo = np.searchsorted(sorted_time, time[k] - window - 1e-12, 'left')
        hi = np.searchsorted(sorted_time, time[k] + window + 1e-12, 'right')
        others = order[lo:hi]
        others = others[atom[others] != atom[k]]
        if others.size == 0:
            continue
        if distance is None:
            flags[k] = True
            continue
        # Distance between the two ions at the moment of hop k, minimum image.
        here = np.asarray(traj.positions[frame[k], atom[k]], dtype=float)
        there = np.asarray(traj.positions[frame[k]][atom[others]], dtype=float)
        delta = there - here
        cell = traj.require_cell('a concerted-hop distance')
        cell = cell if cell.ndim == 2 else cell[frame[k]]
        fractional = delta @ np.linalg.inv(cell)
        fractional -= np.rint(fractional)
        flags[k] = bool(np.any(np.linalg.norm(fractional @ cell, axis=1) <= distance))
    return flags

"""The MD output layout shared by every engine (LAMMPS and ASE), as plain names, units and numpy helpers.

Pure Python + numpy; no AiiDA. The AiiDA side (port specs, exit codes and the node builders the parsers call) is
:mod:`aiida_glassml.calculations.md_outputs`, which documents the nodes. Here:

- :data:`THERMO_ARRAYS` (names → units) and :data:`THERMO_COLUMNS` (their order in every engine's thermo file);
- :data:`RESULTS_KEYS` and :data:`STOP_REASONS` of the ``results`` Dict;
- trajectories: positions are stored **wrapped** into the cell with integer image flags, the LAMMPS ``x y z ix iy
  iz`` convention, so ``unwrapped = positions + images @ cell`` (:func:`wrap_with_images`, :func:`unwrap`) for
  either engine;
- :func:`decimate_indices`: which frames of a full dump go into the stored trajectory.
"""

from __future__ import annotations

import numpy as np

#: why a run stopped
STOP_REASONS = ('completed', 'gamma_halt', 'force_deviation_halt', 'lost_atoms', 'neighbor_overflow', 'walltime',
                'error')

#: ``thermo`` array names → units. ``time`` counts from the start of the first MD stage.
THERMO_ARRAYS: dict[str, str] = {
    'step': '',
    'time': 'ps',
    'temperature': 'K',
    'pressure': 'bar',
    'volume': 'Å³',
    'potential_energy': 'eV',
    'total_energy': 'eV',
    'density': 'g/cm³',
}
#: column order of the thermo file every engine writes (the one definition; the renderers and readers use it)
THERMO_COLUMNS: tuple[str, ...] = tuple(THERMO_ARRAYS)

#: ``results`` keys → meaning. Keys marked optional may be None.
RESULTS_KEYS: dict[str, str] = {
    'engine': "'lammps' or 'ase'",
    'engine_version': 'version string of the MD engine',
    'versions': 'package → version of what ran the MD (aiida-glassml, the engine, ase, pyace; optional)',
    'stop_reason': f'one of {STOP_REASONS}',
    'message': 'error or halt message from the engine, empty when completed',
    'n_steps': 'last MD step reached (global count from the first MD stage)',
    'n_steps_requested': 'MD steps the protocol asked for',
    'n_atoms': 'number of atoms at the end',
    'n_stages_completed': 'stages finished before the run stopped',
    'max_gamma': 'largest max per-atom gamma seen (optional: None without gamma tracking)',
    'n_extrapolative_frames': 'frames saved as candidates: max gamma ≥ gamma_lo, or a committee\'s σ_F,max > sigma_lo '
                              '(optional)',
    'max_force_deviation': 'largest committee σ_F,max seen, eV/Å (optional: None without a committee)',
    'wall_time_s': 'engine wall time in seconds (optional)',
    'final_temperature': 'K, last thermo line',
    'final_pressure': 'bar, last thermo line',
    'final_volume': 'Å³, final structure',
    'final_density': 'g/cm³, final structure',
    'final_potential_energy': 'eV, last thermo line',
    'full_trajectory_file': 'name of the full dump: in `retrieved`, or only in the remote folder when the run was asked '
                            'not to retrieve it (`retrieve_trajectory` false); None when dump_interval is 0',
    'n_trajectory_frames_full': 'frames in the full dump (optional: None when the dump was not retrieved)',
}

#: stop_reason → exit-code label (``completed`` → 0)
STOP_REASON_EXIT_CODES = {
    'completed': None,
    'gamma_halt': 'ERROR_GAMMA_HALT',
    'force_deviation_halt': 'ERROR_FORCE_DEVIATION_HALT',
    'lost_atoms': 'ERROR_LOST_ATOMS',
    'neighbor_overflow': 'ERROR_NEIGHBOR_LIST_OVERFLOW',
    'walltime': 'ERROR_OUT_OF_WALLTIME',
    'error': 'ERROR_ENGINE',
}

DEFAULT_TRAJECTORY_FRAMES = 200
#: dtype of stored image flags (what the glass-dynamics analysis reads)
IMAGES_DTYPE = np.int32


def decimate_indices(n_frames: int, max_frames: int) -> np.ndarray:
    """Indices of at most ``max_frames`` evenly spaced frames out of ``n_frames``, always keeping the last one."""
    if n_frames <= 0 or max_frames <= 0:
        return np.zeros(0, dtype=int)
    if n_frames <= max_frames:
        return np.arange(n_frames)
    indices = np.unique(np.round(np.linspace(0, n_frames - 1, max_frames)).astype(int))
    return indices


def wrap_with_images(positions: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split unwrapped ``positions`` (N, 3) Å into wrapped positions in ``[0, 1)`` fractional coordinates of
    ``cell`` (rows are cell vectors) and integer images, so ``positions = wrapped + images @ cell``."""
    cell = np.asarray(cell, dtype=float)
    fractional = np.asarray(positions, dtype=float) @ np.linalg.inv(cell)
    images = np.floor(fractional)
    wrapped = (fractional - images) @ cell
    return wrapped, images.astype(IMAGES_DTYPE)


def unwrap(positions: np.ndarray, images: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Unwrapped positions of a stored trajectory: ``positions + images @ cell`` frame by frame ((n, N, 3) with
    cells (n, 3, 3), or one frame (N, 3) with a (3, 3) cell)."""
    return np.asarray(positions, dtype=float) + np.matmul(np.asarray(images, dtype=float), np.asarray(cells, dtype=float))

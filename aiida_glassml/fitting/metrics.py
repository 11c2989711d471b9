"""Energy and force errors of a potential on labelled frames. No AiiDA imports.

Conventions (see docs/fitting.md): the potential predicts energies relative to per-element reference energies, so the
DFT energy is corrected first, ``E_ref = E_DFT - sum_i e0[Z_i]``. Energy errors are per atom,
``(E_pred - E_ref) / N`` in meV/atom, averaged over frames; force errors are over all Cartesian components of all
atoms, in meV/Å.

Energies after a fitted per-element offset (:func:`fit_element_offsets`) sit next to the raw ones: a universal MLIP
predicts total energies in its own training set's reference, so its raw energy errors mostly measure that constant
per-element shift; the offset errors measure what the shift cannot remove.
"""

from __future__ import annotations

import typing as t

import numpy as np

from aiida_glassml.common.frames import FrameSet


class MetricsError(ValueError):
    """Predictions and data do not fit together."""


def corrected_energies(frameset: FrameSet, reference_energy: t.Mapping[str, float] | None) -> np.ndarray:
    """DFT energies minus the sum of per-element reference energies (unchanged when there are none).

    pacemaker's ``reference_energy: auto`` also records a per-atom ``shift`` (it makes the most dilute structure's
    corrected energy zero): ``E_ref = E_DFT - sum_i e0[Z_i] + shift * N``."""
    from ase.data import atomic_numbers, chemical_symbols

    if not reference_energy:
        return frameset.energy.copy()
    reference_energy = dict(reference_energy)
    shift = float(reference_energy.pop('shift', 0.0))
    present = {chemical_symbols[int(z)] for z in np.unique(frameset.numbers)}
    missing = sorted(present - set(reference_energy))
    if missing:
        raise MetricsError(
            f'reference energies are given for {sorted(reference_energy)} but the data also contains {missing}; give '
            'a reference energy for every element (or none, if the energies are already corrected).'
        )
    per_atom = np.zeros(int(frameset.numbers.max()) + 1)
    for element, value in reference_energy.items():
        if atomic_numbers.get(element, len(per_atom)) < len(per_atom):
            per_atom[atomic_numbers[element]] = float(value)
    frame_of_atom = np.repeat(np.arange(frameset.n_frames), frameset.n_atoms)
    total = np.bincount(frame_of_atom, weights=per_atom[frameset.numbers], minlength=frameset.n_frames)
    return frameset.energy - total + shift * frameset.n_atoms


def frame_errors(
    n_atoms: np.ndarray, energy_ref: np.ndarray, energy_pred: np.ndarray, forces_ref: np.ndarray,
    forces_pred: np.ndarray,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-frame errors: energy error per atom (meV/atom), force MAE and RMSE over the frame's components (meV/Å)."""
    n_atoms = np.asarray(n_atoms, dtype=np.int64)
    energy_ref, energy_pred = np.asarray(energy_ref, float), np.asarray(energy_pred, float)
    forces_ref, forces_pred = np.asarray(forces_ref, float).reshape(-1, 3), np.asarray(forces_pred, float).reshape(-1, 3)
    if energy_ref.shape != energy_pred.shape or energy_ref.shape != n_atoms.shape:
        raise MetricsError(f'{len(energy_pred)} predicted energies for {len(n_atoms)} frames.')
    if forces_ref.shape != forces_pred.shape or len(forces_ref) != n_atoms.sum():
        raise MetricsError(f'{len(forces_pred)} predicted forces for {int(n_atoms.sum())} atoms.')
    frame_of_atom = np.repeat(np.arange(len(n_atoms)), n_atoms)
    dforce = forces_pred - forces_ref
    abs_sum = np.bincount(frame_of_atom, weights=np.abs(dforce).sum(axis=1), minlength=len(n_atoms))
    sq_sum = np.bincount(frame_of_atom, weights=(dforce**2).sum(axis=1), minlength=len(n_atoms))
    components = 3 * np.maximum(n_atoms, 1)
    return {
        'n_atoms': n_atoms,
        'energy_reference': energy_ref,
        'energy_predicted': energy_pred,
        'energy_error_per_atom': 1000.0 * (energy_pred - energy_ref) / np.maximum(n_atoms, 1),
        'force_mae': 1000.0 * abs_sum / components,
        'force_rmse': 1000.0 * np.sqrt(sq_sum / components),
    }


def summarise(errors: dict[str, np.ndarray], forces_ref=None, forces_pred=None) -> dict[str, float]:
    """Dataset metrics from :func:`frame_errors`: energies averaged over frames, forces over all components."""
    de = errors['energy_error_per_atom']
    n_components = 3 * errors['n_atoms']
    total = max(int(n_components.sum()), 1)
    force_mae = float((errors['force_mae'] * n_components).sum() / total)
    force_rmse = float(np.sqrt((errors['force_rmse'] ** 2 * n_components).sum() / total))
    return {
        'n_frames': int(len(de)),
        'n_atoms': int(errors['n_atoms'].sum()),
        'energy_mae': float(np.abs(de).mean()),
        'energy_rmse': float(np.sqrt((de**2).mean())),
        'energy_max_error': float(np.abs(de).max()),
        'force_mae': force_mae,
        'force_rmse': force_rmse,
    }


def fit_element_offsets(numbers: np.ndarray, n_atoms: np.ndarray, energy_ref, energy_pred) -> dict:
    """Least-squares per-element constants ``c_e`` (eV/atom) with ``E_pred - sum_e n_fe c_e ~ E_ref``, weighted per
    atom (the residual of a frame is divided by its atom count, as the energy metrics are), and the per-atom errors
    left after subtracting them.

    ``numbers``: atomic numbers of all atoms, frame after frame; ``n_atoms``: atoms per frame. When the frames do not
    fix every constant (one composition only, or compositions in fixed ratios) the minimum-norm solution is taken:
    the errors are still those of the best offset. Returns ``offsets`` {symbol: eV/atom}, ``rank`` (independent
    constants) and ``energy_error_per_atom`` (meV/atom, per frame)."""
    from ase.data import chemical_symbols

    n_atoms = np.asarray(n_atoms, dtype=np.int64)
    numbers = np.asarray(numbers, dtype=np.int64)
    energy_ref, energy_pred = np.asarray(energy_ref, float), np.asarray(energy_pred, float)
    if len(numbers) != n_atoms.sum() or energy_ref.shape != n_atoms.shape or energy_pred.shape != n_atoms.shape:
        raise MetricsError(f'{len(numbers)} atoms and {len(energy_pred)} predictions for {len(n_atoms)} frames of '
                           f'{int(n_atoms.sum())} atoms.')  # fmt: skip
    species = np.unique(numbers)
    frame_of_atom = np.repeat(np.arange(len(n_atoms)), n_atoms)
    counts = np.zeros((len(n_atoms), len(species)))
    np.add.at(counts, (frame_of_atom, np.searchsorted(species, numbers)), 1.0)
    per_atom = np.maximum(n_atoms, 1)[:, None]
    difference = (energy_pred - energy_ref) / per_atom[:, 0]
    offsets, _, rank, _ = np.linalg.lstsq(counts / per_atom, difference, rcond=None)
    residual = difference - (counts / per_atom) @ offsets
    return {
        'offsets': {chemical_symbols[int(z)]: float(c) for z, c in zip(species, offsets)},
        'rank': int(rank),
        'energy_error_per_atom': 1000.0 * residual,
    }


def offset_metrics(numbers, errors: dict[str, np.ndarray]) -> dict:
    """``energy_mae_offset``/``energy_rmse_offset`` (meV/atom) after :func:`fit_element_offsets` on the frames of
    :func:`frame_errors`, with the fitted ``energy_offsets`` (eV/atom) and their ``energy_offsets_rank``."""
    fitted = fit_element_offsets(numbers, errors['n_atoms'], errors['energy_reference'], errors['energy_predicted'])
    de = fitted['energy_error_per_atom']
    return {
        'energy_mae_offset': float(np.abs(de).mean()),
        'energy_rmse_offset': float(np.sqrt((de**2).mean())),
        'energy_offsets': fitted['offsets'],
        'energy_offsets_rank': fitted['rank'],
    }


def compute_metrics(
    frameset: FrameSet, energy_pred, forces_pred, reference_energy: t.Mapping[str, float] | None = None
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Metrics and per-frame errors of predictions (total energies relative to the references, eV; forces eV/Å),
    raw and (energies) after a fitted per-element offset."""
    errors = frame_errors(
        frameset.n_atoms, corrected_energies(frameset, reference_energy), energy_pred, frameset.forces, forces_pred
    )
    return {**summarise(errors), **offset_metrics(frameset.numbers, errors)}, errors

"""Reproducible, seeded train/test split of a :class:`~aiida_glassml.common.frames.FrameSet`. No AiiDA imports."""

from __future__ import annotations

import numpy as np

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.fitting.settings import FitSettingsError, check_test_fraction


def split_indices(n_frames: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test frame indices. The same ``(n_frames, test_fraction, seed)`` always gives the same split;
    at least one frame lands on each side."""
    check_test_fraction(test_fraction)
    if n_frames < 2:
        raise FitSettingsError(
            f'cannot split {n_frames} frame(s) into a train and a test set; give at least 2 frames or a separate '
            'test set.'
        )
    n_test = int(round(n_frames * float(test_fraction)))
    n_test = min(max(n_test, 1), n_frames - 1)
    order = np.random.default_rng(int(seed)).permutation(n_frames)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def split_frameset(frameset: FrameSet, test_fraction: float, seed: int) -> tuple[FrameSet, FrameSet]:
    train, test = split_indices(frameset.n_frames, test_fraction, seed)
    return frameset.select(train), frameset.select(test)


def atom_counts(frameset: FrameSet) -> dict[str, int]:
    """Number of atoms (atomic environments) of each element."""
    from ase.data import chemical_symbols

    numbers, counts = np.unique(frameset.numbers, return_counts=True)
    return {chemical_symbols[int(z)]: int(c) for z, c in zip(numbers, counts)}

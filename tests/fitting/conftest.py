"""Fixtures of the fitting tests: a small real dataset drawn from the published NaFePO4 test set."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_glassml.common.frames import FrameSet


@pytest.fixture(scope='session')
def reference_frames(reference_test_set_path) -> FrameSet:
    return FrameSet.read_pacemaker_pickle(reference_test_set_path)


@pytest.fixture(scope='session')
def small_frames(reference_frames) -> FrameSet:
    """30 frames (~3400 atoms) with moderate forces (max |F| < 15 eV/Å), drawn with a fixed seed."""
    off = reference_frames.offsets
    fmax = np.array([np.abs(reference_frames.forces[off[i] : off[i + 1]]).max() for i in range(reference_frames.n_frames)])
    candidates = np.flatnonzero(fmax < 15.0)
    pick = np.sort(np.random.default_rng(7).choice(candidates, 30, replace=False))
    return reference_frames.select(pick)


@pytest.fixture
def python_code(installed_code):
    """The venv python the evaluation job runs on (``glassml-python``, as ``aiida-glassml setup`` registers it)."""
    return installed_code('python', 'glassml.evaluate_potential', label='glassml-python')

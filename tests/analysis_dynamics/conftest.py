"""Synthetic trajectories with known dynamics for the dynamics tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope='session')
def glass_atoms(reference_glass_paths):
    """The published 3003-atom ACE NaFePO4 glass (ASE Atoms, orthorhombic cell)."""
    from aiida_glassml.analysis import read_structure

    return read_structure(reference_glass_paths['ACE_300K_1'])


@pytest.fixture(scope='session')
def make_glass_trajectory(glass_atoms):
    """Factory: the glass with Na doing a Gaussian random walk of diffusion coefficient ``D`` (Å²/ps) and every
    other atom vibrating (Gaussian, ``vibration`` Å per axis) about its site. Positions are wrapped into the cell."""
    from aiida_glassml.analysis.dynamics import Trajectory

    def factory(D: float, n_frames: int = 300, timestep: float = 0.1, vibration: float = 0.1, seed: int = 0,
                n_atoms: int | None = None) -> Trajectory:  # fmt: skip
        # the file lists atoms by type: an evenly strided subset keeps the composition
        atoms = glass_atoms if n_atoms is None else glass_atoms[np.linspace(0, len(glass_atoms) - 1, n_atoms).astype(int)]
        rng = np.random.default_rng(seed)
        symbols = np.array(atoms.get_chemical_symbols())
        sites = atoms.positions
        positions = np.repeat(sites[None], n_frames, axis=0)
        positions += rng.normal(scale=vibration, size=positions.shape)
        na = symbols == 'Na'
        steps = rng.normal(scale=np.sqrt(2 * D * timestep), size=(n_frames - 1, int(na.sum()), 3))
        positions[1:, na] = sites[na] + np.cumsum(steps, axis=0)
        box = np.diag(atoms.cell.array)
        return Trajectory(
            positions=np.mod(positions, box).astype(np.float32), symbols=symbols,
            times=np.arange(n_frames) * timestep, cell=atoms.cell.array, wrapped=True,
        )  # fmt: skip

    return factory

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


def register_python_code(workdir):
    """``glassml-python@localhost`` (this venv's python, as ``aiida-glassml setup`` registers it): the code
    GlassAnalysisWorkChain's analysis jobs run on when none is given. Polled without delay, for fast tests."""
    import sys

    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer('localhost')
    except NotExistent:
        computer = orm.Computer(label='localhost', hostname='localhost', transport_type='core.local',
                                scheduler_type='core.direct', workdir=str(workdir)).store()  # fmt: skip
    if not computer.is_configured:
        computer.configure(safe_interval=0.0)
    computer.set_minimum_job_poll_interval(0.0)
    try:
        return orm.load_code('glassml-python@localhost')
    except NotExistent:
        return orm.InstalledCode(computer=computer, filepath_executable=sys.executable, label='glassml-python',
                                 default_calc_job_plugin='glassml.analysis',
                                 prepend_text='export OMP_NUM_THREADS=1').store()  # fmt: skip


@pytest.fixture(scope='module')
def python_code(aiida_profile, tmp_path_factory):
    return register_python_code(tmp_path_factory.mktemp('analysis_work'))

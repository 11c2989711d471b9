"""Fixtures of the active-learning tests: real codes on a local computer usable from module-scoped fixtures, and
small Na-P-O starting data."""

from __future__ import annotations

import sys

import numpy as np
import pytest

NAPO3 = {'units': ['NaPO3'], 'fractions': [1.0]}


def module_code(executable: str, plugin: str, workdir, label: str | None = None):
    """A code on the computer `al-localhost` (created on first use); skips when the executable is missing."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from aiida_glassml.tools.setup import find_executable

    path = sys.executable if executable == 'python' else find_executable(executable)
    if path is None:
        pytest.skip(f'`{executable}` is not installed on this machine')
    try:
        computer = orm.load_computer('al-localhost')
    except NotExistent:
        computer = orm.Computer(
            label='al-localhost', hostname='localhost', transport_type='core.local', scheduler_type='core.direct',
            workdir=str(workdir),
        ).store()  # fmt: skip
        computer.configure(safe_interval=0.0)
        computer.set_minimum_job_poll_interval(0.0)
    label = label or executable.replace('.', '_')
    try:
        return orm.load_code(f'{label}@al-localhost')
    except NotExistent:
        return orm.InstalledCode(
            computer=computer, filepath_executable=path, label=label, default_calc_job_plugin=plugin,
            prepend_text='export OMP_NUM_THREADS=1',
        ).store()  # fmt: skip


@pytest.fixture(scope='module')
def al_codes(aiida_profile, tmp_path_factory):
    """pacemaker + pace_* (fit and selection), the venv python (ASE MD and the teacher) and CP2K when installed."""
    workdir = tmp_path_factory.mktemp('al_work')
    codes = {
        'pacemaker': module_code('pacemaker', 'glassml.pacemaker', workdir),
        'python': module_code('python', 'core.shell', workdir, label='glassml-python'),
    }
    for name in ('pace_yaml2yace', 'pace_activeset', 'pace_select'):
        codes[name] = module_code(name, 'core.shell', workdir)
    return codes


def napo3_packings(n: int, n_atoms: int = 20, seed: int = 0, rattle: float = 0.0):
    """``n`` seeded random NaPO3 packings of about ``n_atoms`` atoms (rigid PO4-free, the generator's own packing)."""
    from aiida_glassml.structures import generate_random_structure

    structures = []
    for index in range(n):
        atoms = generate_random_structure(NAPO3, seed + index + 1, {'n_atoms': n_atoms}).atoms
        if rattle:
            atoms.rattle(rattle, seed=seed + index)
        structures.append(atoms)
    return structures


def as_structures(atoms_list, prefix: str = 's') -> dict:
    from aiida import orm

    return {f'{prefix}{index:02d}': orm.StructureData(ase=atoms) for index, atoms in enumerate(atoms_list)}


@pytest.fixture(scope='session')
def rng():
    return np.random.default_rng(0)


def melt_frames(potential_yaml, n_structures: int, n_atoms: int = 40, seed: int = 0, temperature: float = 2500.0,
                steps: int = 60, every: int = 20) -> list:  # fmt: skip
    """Melt-like NaPO3 configurations: random packings relaxed briefly and run in Langevin MD at ``temperature`` with
    the published potential (pyace), a frame every ``every`` steps; what an initial AIMD data set looks like."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.optimize import FIRE
    from pyace import PyACECalculator

    frames = []
    for atoms in napo3_packings(n_structures, n_atoms=n_atoms, seed=seed):
        atoms.calc = PyACECalculator(str(potential_yaml))
        FIRE(atoms, logfile=None).run(fmax=0.5, steps=30)
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
        dynamics = Langevin(atoms, 1.0 * units.fs, temperature_K=temperature, friction=0.05,
                            rng=np.random.default_rng(seed + 1))  # fmt: skip
        for _ in range(steps // every):
            dynamics.run(every)
            frame = atoms.copy()
            frame.calc = None
            frame.wrap()
            frames.append(frame)
    return frames


def failures(node) -> str:
    """The exit message or exception of ``node`` and of every descendant that did not finish OK (assertion text)."""
    lines = []
    for process in [node, *node.called_descendants]:
        if process.is_finished_ok:
            continue
        exception = process.exception or ''
        lines.append(f'{process.process_label}<{process.pk}> {process.process_state} exit {process.exit_status}: '
                     f'{process.exit_message or ""} {exception[-1500:]}')
    return '\n'.join(lines)

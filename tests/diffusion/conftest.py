"""Fixtures of the diffusion tests: small NaFePO4 glasses (random packings; the fast protocol minimises first) and
the registered codes."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm

N_FORMULA_UNITS = 16  # NaFePO4 x 16 = 112 atoms


def nafepo4_atoms(seed: int, density_g_cm3: float = 3.0):
    from ase import Atoms

    from aiida_glassml.structures.packing import random_packing

    symbols = ['Na', 'Fe', 'P', 'O', 'O', 'O', 'O'] * N_FORMULA_UNITS
    length = (Atoms(symbols).get_masses().sum() * 1.66053906660 / density_g_cm3) ** (1 / 3)
    cell = np.eye(3) * length
    positions = random_packing(symbols, cell, seed=seed, min_distance=1.7)
    return Atoms(symbols, positions=positions, cell=cell, pbc=True)


def nafepo4_structure(seed: int, density_g_cm3: float = 3.0) -> orm.StructureData:
    return orm.StructureData(ase=nafepo4_atoms(seed, density_g_cm3))


@pytest.fixture
def glasses(aiida_profile):
    """Two 112-atom NaFePO4 'glass replicas'."""
    return {'replica_0': nafepo4_structure(7), 'replica_1': nafepo4_structure(8)}


@pytest.fixture(scope='session')
def ace_minimised_atoms(reference_potential_yaml):
    """The two glasses minimised once with the published ACE potential (L-BFGS, force two-norm < 1e-3 eV/Å): the
    fast protocol's minimisation then converges at once in each of the 12 runs instead of repeating the same work
    (LAMMPS CG: ~760 force calls per run; ASE FIRE: its 1000-step cap)."""
    from ase.optimize import LBFGS
    from pyace import PyACECalculator

    calc = PyACECalculator(basis_set=str(reference_potential_yaml))
    minimised = {}
    for label, seed in (('replica_0', 7), ('replica_1', 8)):
        atoms = nafepo4_atoms(seed)
        atoms.calc = calc
        LBFGS(atoms, logfile=None).run(fmax=1e-4, steps=3000)
        assert np.linalg.norm(atoms.get_forces()) < 1e-3  # LAMMPS's ftol is on the two-norm
        atoms.calc = None
        minimised[label] = atoms
    return minimised


@pytest.fixture
def ace_glasses(aiida_profile, ace_minimised_atoms):
    """:func:`glasses`, minimised with the published ACE potential (the potential of the ACE diffusion tests)."""
    return {label: orm.StructureData(ase=atoms) for label, atoms in ace_minimised_atoms.items()}


@pytest.fixture
def python_code(installed_code):
    return installed_code('python', 'glassml.ase_md', label='glassml-python')


@pytest.fixture
def lammps_code(installed_code):
    return installed_code('lmp', 'glassml.lammps_md', label='lammps')

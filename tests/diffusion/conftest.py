"""Fixtures of the diffusion tests: small NaFePO4 glasses (random packings; the fast protocol minimises first) and
the registered codes."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm

N_FORMULA_UNITS = 16  # NaFePO4 x 16 = 112 atoms


def nafepo4_structure(seed: int, density_g_cm3: float = 3.0) -> orm.StructureData:
    from ase import Atoms

    from aiida_glassml.structures.packing import random_packing

    symbols = ['Na', 'Fe', 'P', 'O', 'O', 'O', 'O'] * N_FORMULA_UNITS
    length = (Atoms(symbols).get_masses().sum() * 1.66053906660 / density_g_cm3) ** (1 / 3)
    cell = np.eye(3) * length
    positions = random_packing(symbols, cell, seed=seed, min_distance=1.7)
    return orm.StructureData(ase=Atoms(symbols, positions=positions, cell=cell, pbc=True))


@pytest.fixture
def glasses(aiida_profile):
    """Two 112-atom NaFePO4 'glass replicas'."""
    return {'replica_0': nafepo4_structure(7), 'replica_1': nafepo4_structure(8)}


@pytest.fixture
def python_code(installed_code):
    return installed_code('python', 'glassml.ase_md', label='glassml-python')


@pytest.fixture
def lammps_code(installed_code):
    return installed_code('lmp', 'glassml.lammps_md', label='lammps')

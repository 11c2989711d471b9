"""Fixtures for the elastic tests: a nearest-neighbour Lennard-Jones fcc crystal with closed-form elastic constants,
small NaFePO4 and NaPO3 cells, and the codes."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_glassml.common import units

#: Lennard-Jones parameters (Cu-like) and a cutoff between the first (1.12 σ) and second (1.59 σ) fcc shells
LJ_SIGMA, LJ_EPSILON, LJ_CUTOFF = 2.3, 0.4, 1.35


def lj_fcc_closed_form() -> dict:
    """C11, C12, C44 (GPa) of an fcc crystal with nearest-neighbour springs at the LJ minimum r0 = 2^(1/6) σ:
    k = φ''(r0) = 72 ε / r0², a = √2 r0, C11 = 2k/a, C12 = C44 = k/a (zero stress, no internal relaxation)."""
    r0 = 2 ** (1 / 6) * LJ_SIGMA
    spring = 72 * LJ_EPSILON / r0**2
    a = np.sqrt(2) * r0
    to_gpa = units.GPA_PER_EV_PER_A3
    return {'a': a, 'C11': 2 * spring / a * to_gpa, 'C12': spring / a * to_gpa, 'C44': spring / a * to_gpa}


@pytest.fixture(scope='session')
def lj_crystal():
    from ase.build import bulk

    return bulk('Cu', 'fcc', a=lj_fcc_closed_form()['a'], cubic=True).repeat(2)


LJ_CALCULATOR = {'name': 'ase.calculators.lj:LennardJones',
                 'kwargs': {'sigma': LJ_SIGMA, 'epsilon': LJ_EPSILON, 'rc': LJ_CUTOFF * LJ_SIGMA}}


@pytest.fixture
def python_code(installed_code):
    return installed_code('python', 'glassml.elastic_ase', label='glassml-python')


@pytest.fixture
def lammps_code(installed_code):
    return installed_code('lmp', 'glassml.elastic_lammps', label='lammps')


@pytest.fixture
def ace_potential(aiida_profile, reference_potential_yaml, reference_potential_yace):
    from aiida_glassml.data.ace_potential import AcePotentialData

    return AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)


def packed_cell(unit: list[str], formula_units: int, density_g_cm3: float, seed: int, min_distance: float = 1.7):
    """A cubic random packing of ``unit`` × ``formula_units`` at ``density_g_cm3`` (the minimised reference of the
    elastic run is then an inherent structure of a random glass)."""
    from ase import Atoms

    from aiida_glassml.structures.packing import random_packing

    symbols = unit * formula_units
    mass = Atoms(symbols).get_masses().sum()
    length = (mass * 1.66053906660 / density_g_cm3) ** (1 / 3)
    cell = np.eye(3) * length
    positions = random_packing(symbols, cell, seed=seed, min_distance=min_distance)
    return Atoms(symbols, positions=positions, cell=cell, pbc=True)


def _conftest_of(folder: str):
    """Another test folder's conftest as a module (the test folders are not packages)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / folder / 'conftest.py'
    spec = importlib.util.spec_from_file_location(f'_glassml_{folder}_conftest', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def napo3_atoms():
    """The labelling tests' 20-atom Na4P4O12 cell (tests/labeling/conftest.py): small enough for CP2K single points."""
    return _conftest_of('labeling').napo3_atoms()


@pytest.fixture
def cp2k_code(installed_code):
    return installed_code('cp2k', 'cp2k', label='cp2k', prepend_text='export OMP_NUM_THREADS=1')


def random_nafepo4(formula_units: int, seed: int):
    """The melt-quench tests' NaFePO4 packing (rigid PO4 tetrahedra, tests/md_ase/conftest.py), reused as is."""
    return _conftest_of('md_ase').random_nafepo4(formula_units=formula_units, seed=seed)

"""Fixtures for the ASE MD tests: a small random NaFePO4 cell and the published potential with an active set."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from aiida_glassml.data.ace_potential import AcePotentialData

#: density of the published 3003-atom ACE glass at 300 K (tests/data/glasses/ACE_300K_1.dat), g/cm³
GLASS_DENSITY = 3.07


def random_nafepo4(formula_units: int = 16, density: float = GLASS_DENSITY, seed: int = 0, min_distance: float = 2.1):
    """A cubic NaFePO4 cell at ``density``: rigid PO4 tetrahedra (P–O 1.54 Å) and Na/Fe placed at random with
    ``min_distance`` between units, the usual starting point of a melt-quench."""
    from ase import Atoms
    from ase.data import atomic_masses, atomic_numbers
    from ase.geometry import get_distances

    rng = np.random.default_rng(seed)
    mass = sum(atomic_masses[atomic_numbers[s]] for s in ('Na', 'Fe', 'P', 'O', 'O', 'O', 'O')) * formula_units
    length = (mass * 1.66053906660 / density) ** (1 / 3)  # amu/(g/cm³) → Å³ with 1.6605 (×1e-24 cancels)
    cell = np.eye(3) * length
    tetrahedron = 1.54 / np.sqrt(3) * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
    symbols, positions = [], np.zeros((0, 3))

    def fits(points, distance):
        if not len(positions):
            return True
        d = get_distances(points, positions, cell=cell, pbc=True)[1]
        return d.min() > distance

    def place(unit_symbols, unit_positions, distance):
        nonlocal positions
        for _ in range(5000):
            rotation, _r = np.linalg.qr(rng.normal(size=(3, 3)))
            points = unit_positions @ rotation.T + rng.random(3) * length
            if fits(points, distance):
                symbols.extend(unit_symbols)
                positions = np.vstack([positions, points])
                return
        raise RuntimeError('could not place a unit; lower the density or min_distance')

    for _ in range(formula_units):
        place(['P', 'O', 'O', 'O', 'O'], np.vstack([[0, 0, 0], tetrahedron]), min_distance)
    for _ in range(formula_units):
        place(['Fe'], np.zeros((1, 3)), min_distance - 0.3)
        place(['Na'], np.zeros((1, 3)), min_distance - 0.1)
    return Atoms(symbols=symbols, positions=positions, cell=cell, pbc=True)


@pytest.fixture(scope='session')
def nafepo4_cell():
    return random_nafepo4()


@pytest.fixture(scope='session')
def active_set_potential(tmp_path_factory, reference_potential_yaml, reference_test_set_path) -> dict[str, pathlib.Path]:
    """The published potential with an active set built by `pace_activeset` from 60 frames of the DFT test set."""
    import pandas as pd

    executable = shutil.which('pace_activeset')
    if executable is None:
        pytest.skip('`pace_activeset` (python-ace) is not installed')
    folder = tmp_path_factory.mktemp('active_set')
    frames = pd.read_pickle(reference_test_set_path, compression='gzip').sample(60, random_state=0)
    frames.to_pickle(folder / 'frames.pckl.gzip', compression='gzip')
    yaml_path = folder / 'output_potential.yaml'
    shutil.copy(reference_potential_yaml, yaml_path)
    subprocess.run([executable, '-V', '-d', 'frames.pckl.gzip', yaml_path.name], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip
    return {'yaml': yaml_path, 'asi': folder / 'output_potential.asi'}


@pytest.fixture
def python_code(installed_code):
    return installed_code('python', 'glassml.ase_md', label='glassml-python')


@pytest.fixture
def ace_potential(aiida_profile, active_set_potential):
    return AcePotentialData.get_or_create(active_set_potential['yaml'], asi=active_set_potential['asi'])

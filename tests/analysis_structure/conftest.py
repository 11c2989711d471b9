"""Hand-built structures for the structure-analysis tests."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms


@pytest.fixture(scope='session')
def teter_glass(reference_glass_paths):
    from aiida_glassml.analysis import read_structure

    return read_structure(reference_glass_paths['Teter_300K_1'])


def tetrahedron(centre: np.ndarray, bond: float = 1.55) -> np.ndarray:
    """Four ideal-tetrahedron ligand positions around ``centre``."""
    directions = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3.0)
    return centre + bond * directions


@pytest.fixture
def ring_network() -> Atoms:
    """An 8-atom P4O4 square ring and, far away, an edge-sharing Fe2O2 rhombus (a 4-atom ring), in a 30 Å box."""
    symbols, positions = [], []
    corners = np.array([[0, 0, 0], [3.2, 0, 0], [3.2, 3.2, 0], [0, 3.2, 0]]) + 5.0
    for k in range(4):
        symbols += ['P', 'O']
        positions += [corners[k], 0.5 * (corners[k] + corners[(k + 1) % 4])]
    fe = np.array([[20.0, 20.0, 20.0], [22.8, 20.0, 20.0]])
    symbols += ['Fe', 'Fe', 'O', 'O']
    positions += [fe[0], fe[1], [21.4, 21.43, 20.0], [21.4, 18.57, 20.0]]
    return Atoms(symbols, positions=positions, cell=[30.0, 30.0, 30.0], pbc=True)

"""Rings in small (AIMD-sized) cells: where every shortest closure of a bond wraps around the cell, the search goes on
to longer closures that stay inside it, as vitrum does (issue 13, item 16)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase import Atoms

from aiida_glassml.analysis import guttman_rings, read_structure

CUTOFFS = {'P-O': 2.0, 'Fe-O': 2.4}


def _small_cell(glass: Atoms, side: float) -> Atoms:
    """The atoms of a cube of ``side`` Å cut from the glass, made periodic: a cell of a few hundred atoms."""
    positions = glass.get_positions() % np.diag(glass.cell)
    small = glass[np.all(positions < side, axis=1)]
    small.set_cell([side] * 3)
    small.pbc = True
    return small


def _vitrum_rings(atoms: Atoms) -> set[tuple[int, ...]]:
    import vitrum

    analysis = vitrum.RingAnalysis(atoms, ['P', 'Fe', 'O'], [('P', 'O'), ('Fe', 'O')])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # vitrum warns that it deepened past wrapping rings: that is the point
        analysis.calculate(cutoff={('P', 'O'): CUTOFFS['P-O'], ('Fe', 'O'): CUTOFFS['Fe-O']}, max_size=24)
    kept = np.flatnonzero(np.isin(atoms.get_chemical_symbols(), ['P', 'Fe', 'O']))  # vitrum drops the other atoms
    return {tuple(sorted(int(kept[k]) for k in ring.indexes)) for ring in analysis.rings}


@pytest.mark.parametrize('side', [12.0, 14.0, 16.0])
def test_small_cell_rings_agree_with_vitrum(reference_glass_paths, side):
    small = _small_cell(read_structure(reference_glass_paths['ACE_300K_1']), side)
    assert 100 < len(small) < 350
    ours = guttman_rings(small, CUTOFFS, formers=('P', 'Fe'), anions=('O',), max_size=24)
    assert ours.n_deepened > 0  # the case of the issue: shortest closures that wrap
    assert {tuple(sorted(int(k) for k in ring)) for ring in ours.rings} == _vitrum_rings(small)
    # every ring found after deepening still closes inside the cell and is a simple cycle
    for ring in ours.rings:
        assert len(set(ring.tolist())) == len(ring)
    sizes = ours.bond_ring_size[ours.bond_ring_size > 0]
    assert sizes.max() <= 24 and all(size % 2 == 0 for size in sizes)


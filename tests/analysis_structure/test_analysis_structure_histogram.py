"""The numba cell-list pair histogram against the pair-list (cKDTree/ASE + bincount) reference: identical counts."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from aiida_glassml.analysis import AnalysisInputError, compute_rdf, read_structure
from aiida_glassml.analysis import _kernels
from aiida_glassml.analysis.neighbors import pair_distance_histogram, perpendicular_widths

pytestmark = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason='numba is not installed')


def species_codes(atoms: Atoms) -> tuple[np.ndarray, int]:
    symbols = np.array(atoms.get_chemical_symbols())
    species = np.unique(symbols)
    return np.searchsorted(species, symbols), len(species)


def both_ways(atoms: Atoms, r_max: float, dr: float) -> tuple[np.ndarray, np.ndarray]:
    codes, n_species = species_codes(atoms)
    n_bins = int(r_max / dr + 1e-9)  # the last edge stays within r_max
    fast = pair_distance_histogram(atoms, codes, n_species, dr, n_bins, method='kernel')
    reference = pair_distance_histogram(atoms, codes, n_species, dr, n_bins, method='pairs')
    return fast, reference


def random_box(lengths, n_atoms: int, seed: int) -> Atoms:
    rng = np.random.default_rng(seed)
    # some atoms outside the box, as unwrapped MD output has them
    positions = rng.uniform(-0.5, 1.5, size=(n_atoms, 3)) * np.asarray(lengths)
    symbols = rng.choice(['Na', 'Fe', 'P', 'O'], size=n_atoms).tolist()
    return Atoms(symbols, positions=positions, cell=np.diag(lengths), pbc=True)


@pytest.fixture(scope='module')
def ace_glass(reference_glass_paths):
    return read_structure(reference_glass_paths['ACE_300K_1'])


@pytest.mark.parametrize('r_max, dr', [(None, 500), (None, 0.02), (6.0, 0.01)])
def test_reference_glass_counts_identical(ace_glass, r_max, dr):
    half = 0.5 * perpendicular_widths(ace_glass.cell).min()
    r_max = half if r_max is None else r_max
    dr = r_max / dr if dr == 500 else dr  # 500 bins up to half the box, as vitrum.Scattering bins it
    fast, reference = both_ways(ace_glass, r_max, dr)
    assert fast.dtype.kind == 'i' and reference.sum() > (2_000_000 if r_max == half else 10_000)
    np.testing.assert_array_equal(fast, reference)


@pytest.mark.parametrize('lengths', [(20.0, 20.0, 20.0), (18.0, 25.0, 31.0), (30.0, 14.5, 22.0)])
@pytest.mark.parametrize('fraction', [1.0, 0.7, 0.25, 0.02])
def test_random_orthorhombic_counts_identical(lengths, fraction):
    atoms = random_box(lengths, 700, seed=int(sum(lengths) * 10 * fraction))
    r_max = fraction * 0.5 * min(lengths)
    fast, reference = both_ways(atoms, r_max, 0.05)
    assert reference.sum() > 0 or fraction < 0.1
    np.testing.assert_array_equal(fast, reference)


def test_pairs_at_half_the_box_counted_as_the_reference():
    """Separations of exactly, and one ulp under, half the box length: where the minimum image is a tie."""
    length = 16.0
    half = 0.5 * length
    positions = [[0.0, 1.0, 1.0], [half, 1.0, 1.0], [1.0, 0.0, 3.0], [1.0, np.nextafter(half, 0.0), 3.0],
                 [2.0, 2.0, 0.0], [2.0, 2.0, -half], [5.0, 5.0, 5.0]]  # fmt: skip
    atoms = Atoms(['Na', 'O', 'Na', 'O', 'P', 'P', 'O'], positions=positions, cell=[length] * 3, pbc=True)
    fast, reference = both_ways(atoms, half, half / 50)
    np.testing.assert_array_equal(fast, reference)
    assert fast[:, -1].sum() >= 1  # the pair one ulp inside the cutoff is counted, in the last bin


def test_compute_rdf_unchanged_by_the_kernel(ace_glass):
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(3):
        frame = ace_glass.copy()
        frame.positions += rng.normal(scale=0.1, size=frame.positions.shape)
        frames.append(frame)
    fast = compute_rdf(frames, method='kernel')
    reference = compute_rdf(frames, method='pairs')
    assert fast.pair_counts.keys() == reference.pair_counts.keys()
    for key in reference.pair_counts:
        np.testing.assert_array_equal(fast.pair_counts[key], reference.pair_counts[key])
    for a, b in reference.pairs:
        np.testing.assert_array_equal(fast.g(a, b), reference.g(a, b))
    assert compute_rdf(frames).pair_counts['Fe-O'].sum() == reference.pair_counts['Fe-O'].sum()


def test_triclinic_cell_falls_back_to_the_pair_list():
    cell = np.array([[15.0, 0.0, 0.0], [3.0, 14.0, 0.0], [1.0, 2.0, 16.0]])
    rng = np.random.default_rng(3)
    atoms = Atoms(rng.choice(['Si', 'O'], 300).tolist(), scaled_positions=rng.random((300, 3)), cell=cell, pbc=True)
    codes, n_species = species_codes(atoms)
    r_max = 0.5 * perpendicular_widths(cell).min()
    auto = pair_distance_histogram(atoms, codes, n_species, 0.05, int(r_max / 0.05))
    reference = pair_distance_histogram(atoms, codes, n_species, 0.05, int(r_max / 0.05), method='pairs')
    np.testing.assert_array_equal(auto, reference)
    with pytest.raises(AnalysisInputError, match='orthorhombic cell'):
        pair_distance_histogram(atoms, codes, n_species, 0.05, int(r_max / 0.05), method='kernel')


def test_without_numba_the_pair_list_is_used(ace_glass, monkeypatch):
    reference = compute_rdf(ace_glass, r_max=6.0, method='pairs')
    monkeypatch.setattr(_kernels, 'HAVE_NUMBA', False)
    rdf = compute_rdf(ace_glass, r_max=6.0)
    for key in reference.pair_counts:
        np.testing.assert_array_equal(rdf.pair_counts[key], reference.pair_counts[key])


def test_unknown_method_is_refused(ace_glass):
    with pytest.raises(AnalysisInputError, match='method must be "auto", "kernel" or "pairs"'):
        compute_rdf(ace_glass, r_max=6.0, method='numba')

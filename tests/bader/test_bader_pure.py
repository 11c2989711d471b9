"""The Bader analysis of :mod:`aiida_glassml.analysis.bader` on densities with a known answer (Gaussian blobs) and on
a real CP2K cube (NaPO3, fast protocol, written with STRIDE 2)."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from ase import Atoms

from aiida_glassml.analysis import AnalysisInputError
from aiida_glassml.analysis import bader

from .conftest import CP2K_VALENCES, NAPO3_CUBE, napo3_atoms


def gaussian_blobs(blobs, a: float = 10.0, n: int = 60) -> tuple[Atoms, np.ndarray]:
    """Atoms at the blob centres and the periodic sum of normalised Gaussians (electrons, width Å) in e/Å³."""
    axis = np.arange(n) / n * a
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing='ij'), axis=-1)
    rho = np.zeros((n, n, n))
    for (symbol, centre, electrons, width) in blobs:
        for image in np.ndindex(3, 3, 3):
            shift = (np.asarray(image) - 1) * a
            r2 = ((grid - np.asarray(centre) - shift) ** 2).sum(axis=-1)
            rho += electrons * np.exp(-r2 / (2 * width**2)) / (2 * np.pi * width**2) ** 1.5
    atoms = Atoms([b[0] for b in blobs], positions=[b[1] for b in blobs], cell=[a, a, a], pbc=True)
    return atoms, rho


def test_two_blobs_split_as_built():
    atoms, rho = gaussian_blobs([('Na', (2.5, 5, 5), 3.0, 0.6), ('Cl', (7.0, 5.2, 5), 5.0, 0.7)])
    result = bader.bader_analysis(bader.ChargeDensity(atoms, rho, 'synthetic'))
    np.testing.assert_allclose(result.populations, [3.0, 5.0], atol=0.01)
    assert result.n_electrons == pytest.approx(8.0, abs=1e-6)
    assert result.populations.sum() == pytest.approx(result.n_electrons, abs=1e-9)  # every point is assigned
    assert result.volumes.sum() == pytest.approx(1000.0)
    assert result.n_maxima == 2 and result.max_attractor_distance < 0.2
    charges = bader.bader_charges(result.populations, ['Na', 'Cl'], {'Na': 4, 'Cl': 4})
    np.testing.assert_allclose(charges, [1.0, -1.0], atol=0.01)


def test_equal_blobs_split_evenly_through_a_chgcar(tmp_path):
    """Identical blobs related by the cell's symmetry get equal shares, read back from a CHGCAR written by ASE."""
    atoms, rho = gaussian_blobs([('O', (2.5, 2.5, 2.5), 4.0, 0.8), ('O', (7.5, 7.5, 7.5), 4.0, 0.8)])
    bader.write_chgcar(tmp_path / 'CHGCAR', atoms, rho)
    result = bader.analyse_density_file(tmp_path / 'CHGCAR', ['O', 'O'], atoms.positions, atoms.cell, {'O': 6})
    np.testing.assert_allclose(result['arrays']['populations'], [4.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(result['arrays']['charges'], [2.0, 2.0], atol=1e-6)
    assert result['summary']['format'] == 'chgcar'
    assert result['summary']['n_electrons_density'] == pytest.approx(8.0, abs=1e-6)


def test_real_cp2k_cube(tmp_path):
    """A CP2K PBE valence density of Na4P4O12: the populations add up to the 128 valence electrons (GTH q-values);
    Na and P come out positive, O negative, with the usual Bader magnitudes."""
    atoms = napo3_atoms()
    result = bader.analyse_density_file(NAPO3_CUBE, atoms.get_chemical_symbols(), atoms.positions, atoms.cell,
                                        CP2K_VALENCES)  # fmt: skip
    summary, charges = result['summary'], result['arrays']['charges']
    assert summary['format'] == 'cube' and summary['grid'] == [40, 40, 40]
    assert summary['n_electrons_valence'] == 128
    assert summary['n_electrons_bader'] == pytest.approx(128, rel=0.01)
    symbols = np.array(atoms.get_chemical_symbols())
    assert (charges[symbols == 'Na'] > 0.5).all() and (charges[symbols == 'Na'] < 1.0).all()
    assert (charges[symbols == 'P'] > 3.0).all()
    assert (charges[symbols == 'O'] < -1.0).all()
    # the four formula units are equivalent: equal charges per element
    assert np.ptp(charges[symbols == 'Na']) < 0.05 and np.ptp(charges[symbols == 'P']) < 0.05
    # the gzipped and the plain file read the same
    plain = tmp_path / 'density.cube'
    with gzip.open(NAPO3_CUBE, 'rb') as source, open(plain, 'wb') as target:
        shutil.copyfileobj(source, target)
    again = bader.analyse_density_file(plain, list(symbols), atoms.positions, atoms.cell, CP2K_VALENCES)
    np.testing.assert_allclose(again['arrays']['charges'], charges)


def test_bad_input_names_the_problem(tmp_path):
    atoms = napo3_atoms()
    symbols = atoms.get_chemical_symbols()
    with pytest.raises(AnalysisInputError, match='no valence charge Z_val for P'):
        bader.analyse_density_file(NAPO3_CUBE, symbols, atoms.positions, atoms.cell, {'Na': 9, 'O': 6})
    with pytest.raises(AnalysisInputError, match='does not exist'):
        bader.read_density(tmp_path / 'missing.cube')
    with pytest.raises(AnalysisInputError, match='cannot tell the format'):
        bader.density_format('density.dat')
    moved = atoms.positions.copy()
    moved[3] += 0.5
    with pytest.raises(AnalysisInputError, match='lie up to 0.866 Å'):
        bader.check_density_matches(bader.read_density_atoms(NAPO3_CUBE), symbols, moved, atoms.cell)
    with pytest.raises(AnalysisInputError, match='holds 20 atoms'):
        bader.check_density_matches(bader.read_density_atoms(NAPO3_CUBE), symbols[:-1], moved[:-1], atoms.cell)
    (tmp_path / 'broken.cube').write_text('not a cube\n')
    with pytest.raises(AnalysisInputError, match='not a readable cube file'):
        bader.read_density(tmp_path / 'broken.cube')


def test_job_main_writes_results_or_the_error(tmp_path):
    import json

    atoms, rho = gaussian_blobs([('Na', (2.5, 5, 5), 3.0, 0.6), ('Cl', (7.0, 5, 5), 5.0, 0.7)], n=40)
    bader.write_chgcar(tmp_path / 'CHGCAR', atoms, rho)
    spec = {'density': 'CHGCAR', 'format': None, 'symbols': ['Na', 'Cl'], 'positions': atoms.positions.tolist(),
            'cell': atoms.cell.array.tolist(), 'valences': {'Na': 4, 'Cl': 4}}  # fmt: skip
    (tmp_path / bader.FILES['input']).write_text(json.dumps(spec))
    assert bader.main([str(tmp_path / bader.FILES['input'])]) == 0
    with np.load(tmp_path / bader.FILES['arrays']) as arrays:
        np.testing.assert_allclose(arrays['charges'], [1.0, -1.0], atol=0.02)
    spec['valences'] = {'Na': 4}
    (tmp_path / bader.FILES['input']).write_text(json.dumps(spec))
    assert bader.main([str(tmp_path / bader.FILES['input'])]) == 1
    assert 'no valence charge Z_val for Cl' in json.loads((tmp_path / bader.FILES['results']).read_text())['error']

"""The analysis on real published glasses: every quantity finite and physically sane."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from aiida_glassml.analysis import (
    analyse_structure,
    compute_rdf,
    guttman_rings,
    neutron_structure_factor,
    read_structure,
    real_space_functions,
    ring_centre_rdf,
    xray_structure_factor,
)

PUBLISHED = pathlib.Path('/work/shared/reference/nafepo4/glass_structures')


def _check_summary(result):
    assert result['n_atoms'] == 3003
    assert 2.8 < result['density'] < 3.6
    assert set(result['cutoffs']) == {'Fe-O', 'Na-O', 'P-O'}
    assert 1.6 < result['cutoffs']['P-O'] < 2.6 and 2.3 < result['cutoffs']['Fe-O'] < 3.1
    assert result['coordination']['P']['O'] == pytest.approx(4.0, abs=0.1)
    assert 3.8 < result['coordination']['Fe']['O'] < 6.5
    assert 4.5 < result['coordination']['Na']['O'] < 8.0
    for former in ('P', 'Fe'):
        assert sum(result['qn'][former].values()) == pytest.approx(1.0)
        assert sum(result['qn_by_anion'][former]['O'].values()) == pytest.approx(1.0)
    assert set(result['bridging']) == {'P-O-P', 'P-O-Fe', 'Fe-O-P', 'Fe-O-Fe'}
    assert all(np.isfinite(v) and v >= 0 for v in result['bridging'].values())
    # every P–O bond is counted in P-O-Fe or not; cannot exceed the 4 bonds per P
    assert result['bridging']['P-O-Fe'] <= 4.0
    assert 0.9 < result['tetrahedral_q']['P'] <= 1.0


@pytest.mark.parametrize('name', ['ACE_300K_1', 'BMP_300K_1', 'Teter_300K_1'])
def test_reference_glass(reference_glass_paths, name):
    atoms = read_structure(reference_glass_paths[name])
    result = analyse_structure(atoms)
    _check_summary(result)
    rdf = compute_rdf(atoms)
    for lorch in (False, True):
        q, s = neutron_structure_factor(rdf, lorch=lorch)
        assert np.isfinite(s).all()
        assert abs(s[(q > 15) & (q < 20)].mean() - 1.0) < 0.05
        assert s[q < 0.6].mean() < 0.3  # a dense glass is nearly incompressible at low Q
    q, sx = xray_structure_factor(rdf, lorch=True)
    assert np.isfinite(sx).all()
    functions = real_space_functions(rdf)
    assert np.isfinite(functions['T']).all()
    assert functions['r'][np.argmax(functions['G'])] == pytest.approx(1.53, abs=0.1)  # P–O bond dominates
    rings = guttman_rings(atoms, result['cutoffs'])
    sizes = rings.size_distribution()
    assert sizes and min(sizes) >= 4 and all(size % 2 == 0 for size in sizes)
    r, g, n_r = ring_centre_rdf(atoms, rings.centres, 'Na')
    assert np.isfinite(g).all() and abs(g[r > 6].mean() - 1.0) < 0.15


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason='the 15 published glasses are not on this machine')
@pytest.mark.parametrize('path', sorted(PUBLISHED.glob('*/*.dat')) if PUBLISHED.is_dir() else [], ids=lambda p: f'{p.parent.name}-{p.stem}')
def test_published_glasses(path):
    _check_summary(analyse_structure(read_structure(path)))

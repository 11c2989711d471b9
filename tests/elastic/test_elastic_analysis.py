"""The pure science of the elastic constants: the strain loop in ASE against a closed form, the regression, the
isotropic moduli, units and signs, the LAMMPS rendering, and refused strain protocols."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.lj import LennardJones

from aiida_glassml.analysis import elastic

from .conftest import LJ_CUTOFF, LJ_EPSILON, LJ_SIGMA, lj_fcc_closed_form


def test_lj_fcc_strain_loop_recovers_the_closed_form(tmp_path, lj_crystal):
    calculator = LennardJones(sigma=LJ_SIGMA, epsilon=LJ_EPSILON, rc=LJ_CUTOFF * LJ_SIGMA)
    protocol = elastic.StrainProtocol(n_steps=5)
    results = elastic.run_strain_loop(lj_crystal.copy(), calculator, protocol, tmp_path, log=None)
    assert results['n_points'] == 1 + 6 * 2 * 5 and results['n_unconverged'] == 0
    table = elastic.read_table((tmp_path / elastic.FILES['table']).read_text(), 'ase')
    summary = elastic.analyse_replicas({'lj': table})
    expected = lj_fcc_closed_form()
    for name in ('C11', 'C12', 'C44'):
        assert summary[name]['mean'] == pytest.approx(expected[name], rel=1e-4), name
    assert summary['nu']['mean'] == pytest.approx(0.25, abs=1e-4)  # C12 = C44 (Cauchy), K = 4/3 C12... ν = 1/4
    assert summary['min_r2'] > 0.99999 and summary['warnings'] == []
    # the full matrix: cubic symmetry, no normal-shear coupling, C12 in every off-diagonal normal entry
    matrix = np.array(summary['per_replica']['lj']['matrix'])
    assert np.allclose(np.diag(matrix)[:3], expected['C11'], rtol=1e-4)
    assert np.allclose(matrix[:3, 3:], 0.0, atol=1e-2) and np.allclose(matrix[3:, :3], 0.0, atol=1e-2)


def test_regression_recovers_slopes_of_noisy_isotropic_data():
    lam, mu = 30.0, 20.0  # Lamé constants, GPa: C11 = λ + 2μ, C12 = λ, C44 = μ
    stiffness = np.zeros((6, 6))
    stiffness[:3, :3] = lam
    stiffness[np.arange(3), np.arange(3)] += 2 * mu
    stiffness[np.arange(3, 6), np.arange(3, 6)] = mu
    rng = np.random.default_rng(1)
    protocol = elastic.StrainProtocol()
    rows = [(elastic.REFERENCE, 0.0)] + [(elastic.COMPONENTS.index(c), s) for c, s in protocol.points()]
    component = np.array([r[0] for r in rows])
    strain = np.array([r[1] for r in rows])
    vectors = np.zeros((len(rows), 6))
    vectors[np.arange(len(rows))[component >= 0], component[component >= 0]] = strain[component >= 0]
    stress = vectors @ stiffness.T + 0.3 + rng.normal(0, 2e-4, size=(len(rows), 6))  # residual stress + noise
    summary = elastic.analyse_replicas({'r': {'component': component, 'strain': strain, 'stress': stress}})
    assert summary['C11']['mean'] == pytest.approx(lam + 2 * mu, rel=0.01)
    assert summary['C12']['mean'] == pytest.approx(lam, rel=0.02)
    assert summary['C44']['mean'] == pytest.approx(mu, rel=0.01)
    bulk, young, poisson = lam + 2 * mu / 3, mu * (3 * lam + 2 * mu) / (lam + mu), lam / (2 * (lam + mu))
    assert summary['K']['mean'] == pytest.approx(bulk, rel=0.01)
    assert summary['G']['mean'] == pytest.approx(mu, rel=0.01)
    assert summary['E']['mean'] == pytest.approx(young, rel=0.01)
    assert summary['nu']['mean'] == pytest.approx(poisson, abs=0.005)
    assert summary['anisotropy']['mean'] == pytest.approx(1.0, abs=0.02)
    assert summary['per_replica']['r']['components']['xx']['residual_stress'] == pytest.approx(0.3, abs=1e-3)
    assert summary['C11']['std'] is None  # one replica: no spread


def test_spread_over_replicas_is_the_sample_standard_deviation():
    assert elastic.moduli(70.0, 30.0, 20.0)['G'] == pytest.approx(20.0)
    tables = {}
    for label, c11 in (('a', 60.0), ('b', 64.0)):
        strain = np.array([0.0, 1e-4, -1e-4, 1e-4, -1e-4])
        component = np.array([-1, 0, 0, 5, 5])
        stress = np.zeros((5, 6))
        stress[1:3, 0], stress[1:3, 1], stress[1:3, 2] = c11 * strain[1:3], 25 * strain[1:3], 25 * strain[1:3]
        stress[3:, 5] = 18 * strain[3:]
        tables[label] = {'component': component, 'strain': strain, 'stress': stress}
    summary = elastic.analyse_replicas(tables)
    assert summary['C11']['values'] == pytest.approx([60.0, 64.0])
    assert summary['C11']['mean'] == pytest.approx(62.0) and summary['C11']['std'] == pytest.approx(np.std([60, 64], ddof=1))


def test_nonlinear_response_is_measured():
    strain = np.linspace(-0.02, 0.02, 41)
    linear = elastic.nonlinearity(strain, 50 * strain)
    assert linear['value'] == pytest.approx(0.0, abs=1e-9)
    # σ = bε + cε²: the tangent modulus changes by 2cε_max/b = 20 % at the largest strain
    quadratic = elastic.nonlinearity(strain, 50 * strain + 250 * strain**2)
    assert quadratic['curvature'] == pytest.approx(0.2, rel=1e-6)
    # a cubic softening shows in the slopes of the two halves
    cubic = elastic.nonlinearity(strain, 50 * strain - 1e5 * strain**3)
    assert cubic['halves'] > 0.2 and cubic['value'] == cubic['halves']
    # one step each way (the DFT protocol): only the curvature is defined
    assert elastic.nonlinearity(np.array([-0.005, 0.0, 0.005]), np.array([-1.0, 0.0, 1.1]))['halves'] is None


def test_units_and_signs():
    # ASE stress is already tension-positive, in eV/Å³; LAMMPS pxx is a pressure in bar
    assert elastic.stress_gpa(np.array([1.0]), 'ase')[0] == pytest.approx(160.21766, rel=1e-6)
    assert elastic.stress_gpa(np.array([1.0e4]), 'lammps')[0] == pytest.approx(-1.0)
    with pytest.raises(elastic.ElasticInputError, match='unknown engine'):
        elastic.stress_gpa(np.zeros(1), 'gromacs')


def test_deformations_keep_a_lammps_box_and_shear_as_tilt():
    cell = np.array([[10.0, 0, 0], [1.0, 11.0, 0], [0.5, 0.7, 12.0]])
    lx, ly, lz, xy, xz, yz = elastic.lammps_bounds(elastic.strained_cell(cell, 'xy', 0.01))
    assert (lx, ly, lz) == (10.0, 11.0, 12.0) and xy == pytest.approx(1.0 + 0.01 * 11.0)
    assert xz == pytest.approx(0.5 + 0.01 * 0.7)  # x' = x + γy moves c's x by γ c_y
    strained = elastic.strained_cell(cell, 'xx', 0.01)
    assert np.allclose(np.triu(strained, 1), 0.0) and strained[0, 0] == pytest.approx(10.1)


def test_lammps_input_restarts_each_direction_from_the_reference():
    from aiida_glassml.md import lammps as render
    from aiida_glassml.md import potentials

    block, _ = render.classical_block(potentials.teter(), [('Na', 'Na'), ('P', 'P'), ('O', 'O')])
    protocol = elastic.StrainProtocol(n_steps=2)
    text = elastic.render_lammps_input(protocol, block, ['Na', 'P', 'O'], np.eye(3) * 12.0)
    assert text.count('read_dump reference.dump') == 12  # 6 components x 2 directions
    assert text.count('\nminimize ') == 2 + 24  # CG + FIRE for the reference, then one per strained state
    assert 'min_modify norm max' in text and text.index('change_box all triclinic') < text.index('kspace_style')
    assert 'xy final 0.0024' in text  # γ = 2e-4 on the second xy step: tilt = γ ly = 2e-4 × 12 Å
    assert text.rstrip().endswith(elastic.MARK_END + '"')


@pytest.mark.parametrize('changes, message', [
    ({'strain_step': 0.0}, 'must be a positive strain'),
    ({'strain_step': -1e-4}, 'must be a positive strain'),
    ({'strain_step': 0.01, 'n_steps': 20}, 'is not linear elastic'),
    ({'components': ['xx', 'yy']}, 'one shear'),
    ({'components': ['xx', 'xq']}, 'distinct names'),
    ({'n_steps': 0}, 'positive integer'),
    ({'optimizer': 'bfgs2'}, 'unknown `optimizer`'),
])
def test_bad_strain_protocols_are_refused(changes, message):
    with pytest.raises(elastic.ElasticInputError, match=message):
        elastic.StrainProtocol.from_dict({**elastic.StrainProtocol().to_dict(), **changes})
    with pytest.raises(elastic.ElasticInputError, match='unknown strain keys'):
        elastic.StrainProtocol.from_dict({'strain': 1e-4})

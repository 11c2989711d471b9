"""Scattering fixes of issue 13: given scattering lengths and form factors, R_χ units, the Q_max-broadened T(r),
and S(Q) figures starting at 2π/r_max."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_glassml.analysis import (
    compute_rdf,
    neutron_structure_factor,
    real_space_functions,
    xray_form_factor,
    xray_structure_factor,
)
from aiida_glassml.analysis.scattering import CROMER_MANN


@pytest.fixture(scope='module')
def teter_rdf(teter_glass):
    return compute_rdf(teter_glass, dr=0.02)


def _transform(rdf, g_total, q):
    """1 + 4πρ₀ ∫ r² (g − 1) sin(Qr)/(Qr) dr on the histogram bins (no window)."""
    r, dr = rdf.r, np.diff(rdf.edges)
    kernel = np.sinc(np.outer(q, r) / np.pi) * (4 * np.pi * rdf.number_density * r**2 * dr)[None, :]
    return 1.0 + kernel @ (g_total - 1.0)


def test_zero_scattering_length_is_used_in_both_s_of_q_and_t_of_r(teter_rdf):
    """A given b = 0 (Na made invisible) must not fall back to the table: S(Q) and T(r) describe the same total."""
    lengths = {'Na': 0.0}
    q, s = neutron_structure_factor(teter_rdf, scattering_lengths=lengths)
    functions = real_space_functions(teter_rdf, 'neutron', scattering_lengths=lengths)
    # with b_Na = 0 no pair involving Na contributes to the weighted g(r)
    weights = {'Fe': 9.45, 'Na': 0.0, 'O': 5.803, 'P': 5.13}
    np.testing.assert_allclose(functions['g'], teter_rdf.total(weights), rtol=1e-12)
    assert not np.allclose(functions['g'], real_space_functions(teter_rdf, 'neutron')['g'])
    # S(Q) is the sine transform of that very g(r)
    np.testing.assert_allclose(s, _transform(teter_rdf, functions['g'], q), atol=1e-9)


def test_form_factor_coefficients_as_numpy_array(teter_rdf):
    q = np.linspace(0.0, 20.0, 101)
    coefficients = np.array(CROMER_MANN['O'])
    np.testing.assert_allclose(xray_form_factor('O', q, coefficients), xray_form_factor('O', q))
    assert xray_form_factor('O', np.zeros(1))[0] == pytest.approx(8.0, abs=0.01)  # f(0) = Z
    _, s_default = xray_structure_factor(teter_rdf, q)
    _, s_array = xray_structure_factor(teter_rdf, q, form_factors={s: np.array(CROMER_MANN[s]) for s in teter_rdf.species})
    np.testing.assert_allclose(s_array, s_default)
    # a changed O form factor reaches S(Q) and the X-ray-weighted T(r) alike
    doubled = {'O': 2 * np.array(CROMER_MANN['O'])}
    assert not np.allclose(xray_structure_factor(teter_rdf, q, form_factors=doubled)[1], s_default)
    weights = real_space_functions(teter_rdf, 'xray', form_factors=doubled)['g']
    assert not np.allclose(weights, real_space_functions(teter_rdf, 'xray')['g'])


@pytest.mark.parametrize('weighting', ['neutron', 'xray'])
def test_broadened_t_of_r_is_the_model_seen_through_q_max(teter_rdf, weighting):
    """With no window, the back-transform up to Q_max is G(r) convolved with the sinc kernel of the finite Q range
    (exact for the histogram g(r)); the first peak drops by about 2× at Q_max = 20 Å⁻¹, as measured T(r) do."""
    from aiida_glassml.analysis import broadened_real_space

    q_max = 20.0
    broadened = broadened_real_space(teter_rdf, q_max, weighting, lorch=False, dq=0.002)
    sharp = real_space_functions(teter_rdf, weighting)
    r, dr = teter_rdf.r, np.diff(teter_rdf.edges)
    assert np.array_equal(broadened['r'], r)
    if weighting == 'neutron':  # Q-independent weights: the convolution theorem holds exactly
        diff, total = r[:, None] - r[None, :], r[:, None] + r[None, :]
        kernel = (q_max * np.sinc(q_max * diff / np.pi) - np.sin(q_max * total) / total) / np.pi
        expected = kernel @ (sharp['G'] * dr)
        assert np.abs(broadened['G'] - expected).max() < 2e-3 * np.abs(sharp['G']).max()
    np.testing.assert_allclose(broadened['T'] - broadened['G'], 4 * np.pi * teter_rdf.number_density * r)
    first = (r > 1.3) & (r < 1.8)  # the P–O peak
    ratio = sharp['T'][first].max() / broadened['T'][first].max()
    assert 2.0 < ratio < 3.5
    lorch = broadened_real_space(teter_rdf, q_max, weighting, lorch=True)
    assert lorch['T'][first].max() < broadened['T'][first].max()  # Lorch trades ripples for width
    wide = (r > 1.0) & (r < 2.1)  # the peak area (the P–O coordination) survives broadening
    assert np.sum(lorch['T'][wide] - 4 * np.pi * teter_rdf.number_density * r[wide]) == pytest.approx(
        np.sum(sharp['G'][wide]), rel=0.1)


def test_r_chi_is_labelled_a_fraction_and_percent(stored_r_chi):
    r_chi, text = stored_r_chi
    assert r_chi['r_chi_unit'] == 'fraction'
    assert r_chi['r_chi_percent'] == pytest.approx(100 * r_chi['r_chi'])
    assert f'({100 * r_chi["r_chi"]:.2f} %)' in text


@pytest.fixture(scope='module')
def stored_r_chi(aiida_profile, teter_glass, tmp_path_factory):
    """R_χ of the broadened model T(r) against itself × 1.1, through the calcfunctions and the CLI."""
    import json

    from aiida.orm import StructureData
    from click.testing import CliRunner

    from aiida_glassml.analysis import broadened_real_space
    from aiida_glassml.calcfunctions.analysis_structure import experimental_curve_node, run_structure_analysis
    from aiida_glassml.cli import cli

    model = broadened_real_space(compute_rdf(teter_glass, dr=0.02), 20.0, 'xray', lorch=False)
    r, t = model['r'], 1.1 * model['T']
    experimental = experimental_curve_node(r, t, 'T_xray_broadened')
    outputs = run_structure_analysis(StructureData(ase=teter_glass), {}, experimental,
                                     {'quantity': 'T_xray_broadened', 'x_range': [1.0, 8.0]})  # fmt: skip
    assert outputs['r_chi']['r_chi'] == pytest.approx(0.1 / 1.1, rel=1e-6)
    path = tmp_path_factory.mktemp('tr') / 'tr.dat'
    np.savetxt(path, np.column_stack([r, t]))
    glass = tmp_path_factory.mktemp('glass') / 'glass.extxyz'
    teter_glass.write(glass, format='extxyz')
    runner = CliRunner()
    args = ['analyse', 'structure', str(glass), '--experimental', str(path), '--quantity', 'T_xray_broadened',
            '--q-range', '1', '8']  # fmt: skip
    entry = json.loads(runner.invoke(cli, [*args, '--json']).output)['r_chi']
    assert entry['r_chi'] == pytest.approx(0.1 / 1.1, rel=1e-6) and entry['r_chi_unit'] == 'fraction'
    return outputs['r_chi'], runner.invoke(cli, args).output


def test_structure_factor_figures_start_at_two_pi_over_r_max(stored_r_chi, monkeypatch, teter_glass):
    """S(Q) below 2π/r_max is truncation ripple: the stored nodes carry q_min and the figures start there."""
    from aiida_glassml.analysis import figures_structure
    from aiida_glassml.calcfunctions.analysis_structure import plot_partial_structure_factors, plot_structure_factor

    r_chi, _ = stored_r_chi
    outputs = {link.link_label: link.node for link in r_chi.creator.inputs.model.creator.base.links.get_outgoing().all()}
    sq, partial = outputs['structure_factor'], outputs['partial_structure_factors']
    r_max = sq.base.attributes.get('r_max')
    assert r_max == pytest.approx(compute_rdf(teter_glass).edges[-1])
    assert sq.base.attributes.get('q_min') == pytest.approx(2 * np.pi / r_max)
    assert partial.base.attributes.get('q_min') == pytest.approx(2 * np.pi / r_max)
    assert sq.get_x()[1][0] < 2 * np.pi / r_max  # the data keep the full grid; only the figure is cut
    figures = []
    monkeypatch.setattr(figures_structure, '_png', lambda figure: figures.append(figure) or b'\x89PNG')
    plot_structure_factor(sq)
    plot_partial_structure_factors(partial)
    assert len(figures) == 2
    for figure in figures:
        lines = [line for line in figure.axes[0].lines if len(line.get_xdata()) > 2]
        assert lines and all(line.get_xdata()[0] >= 2 * np.pi / r_max for line in lines)

"""Tg from two lines on synthetic cooling curves with a known Tg; cooling-curve binning; melt-quench analysis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiida_glassml.md.melt_quench_analysis import analyse_replicas, cooling_curve_png
from aiida_glassml.md.protocol import melt_quench
from aiida_glassml.md.tg import TgFitError, bin_cooling_curve, cooling_curve, fit_tg, hinge


def test_exact_two_lines_give_the_exact_tg():
    temperature = np.linspace(300.0, 3000.0, 271)
    volume = hinge(temperature, 1234.0, 40000.0, 0.5, 2.0)
    fit = fit_tg(temperature, volume)
    assert fit.tg == pytest.approx(1234.0, abs=0.5)
    assert fit.slope_glass == pytest.approx(0.5, rel=1e-3) and fit.slope_liquid == pytest.approx(2.0, rel=1e-3)


def test_noisy_curve_recovers_tg_within_its_uncertainty():
    rng = np.random.default_rng(4)
    temperature = np.linspace(3000.0, 300.0, 2700)  # cooling order, as written by a ramp
    volume = hinge(temperature, 1100.0, 1000.0, 0.02, 0.08) + rng.normal(0.0, 2.0, temperature.size)
    fit = fit_tg(*bin_cooling_curve(temperature, volume, 25.0))
    assert 0 < fit.tg_stderr < 20.0
    assert abs(fit.tg - 1100.0) < 3 * fit.tg_stderr
    low, high = fit.tg_interval
    assert low < high and low - fit.tg_stderr < fit.tg < high + fit.tg_stderr


def test_uncertainty_grows_with_noise():
    rng = np.random.default_rng(0)
    temperature = np.linspace(300.0, 2000.0, 300)
    clean = hinge(temperature, 900.0, 0.0, 1.0, 3.0)
    errors = [fit_tg(temperature, clean + rng.normal(0.0, sigma, temperature.size)).tg_stderr for sigma in (1.0, 20.0)]
    assert errors[0] < errors[1]


@settings(max_examples=25, deadline=None)
@given(tg=st.floats(500.0, 2500.0), ratio=st.floats(1.5, 6.0))
def test_any_breakpoint_inside_the_range_is_found(tg, ratio):
    temperature = np.linspace(300.0, 3000.0, 136)
    fit = fit_tg(temperature, hinge(temperature, tg, 10.0, 0.01, 0.01 * ratio))
    assert fit.tg == pytest.approx(tg, abs=1.0)


@pytest.mark.parametrize(('temperature', 'values', 'match'), [
    (np.arange(5.0), np.arange(5.0), 'at least 7 points'),
    (np.full(10, 300.0), np.arange(10.0), 'same temperature'),
    (np.arange(10.0), np.arange(9.0), 'differ in length'),
])  # fmt: skip
def test_unusable_curves_are_refused(temperature, values, match):
    with pytest.raises(TgFitError, match=match):
        fit_tg(temperature, values)


def test_cooling_curve_uses_the_ramp_target_temperature():
    steps = np.arange(0, 1001, 10)
    columns = {'volume': steps * 1.0}
    curve = cooling_curve(steps, columns, first_step=200, last_step=800, t_start=2000.0, t_end=800.0, bin_width=100.0)
    assert curve['target_temperature'].tolist() == [850.0 + 100.0 * i for i in range(12)]
    # target T 2000 K at step 200 and 800 K at step 800 (2 K/step): bin [800, 900) K holds steps 760..800
    assert curve['volume'][0] == pytest.approx(np.mean([760, 770, 780, 790, 800]))


def test_replica_analysis_gives_tg_and_densities():
    """Two synthetic replicas following the fast melt-quench step layout with a known Tg of 1000 K."""
    protocol = melt_quench(t_high=2000.0, time_scale=0.0005, cooling_rate=5000.0, thermo_interval=5)
    ranges = [protocol.stage_steps(s) for s in protocol.stages]
    total = sum(ranges)
    steps = np.arange(0, total + 1, 5)
    ramp_start = sum(ranges[:6])
    ramp_end = ramp_start + ranges[6]
    target = np.interp(steps, [0, ramp_start, ramp_end, total], [2000.0, 2000.0, 300.0, 300.0])
    rng = np.random.default_rng(1)
    thermo = {}
    for label in ('replica_0', 'replica_1'):
        volume = hinge(target, 1000.0, 1500.0, 0.02, 0.1) + rng.normal(0.0, 0.5, steps.size)
        thermo[label] = {'step': steps, 'volume': volume, 'potential_energy': -600 + 0.01 * target,
                         'density': 1.0e4 / volume, 'temperature': target}  # fmt: skip
    result = analyse_replicas(protocol, thermo, 'volume', 50.0)
    assert result['tg']['tg'] == pytest.approx(1000.0, abs=4 * result['tg']['tg_stderr'] + 10.0)
    assert set(result['tg']['tg_replicas']) == {'replica_0', 'replica_1'}
    assert result['densities']['window_steps'] == [ramp_end, total]
    assert result['densities']['density']['replica_0'] == pytest.approx(1.0e4 / 1486.0, rel=1e-3)
    png = cooling_curve_png({'target_temperature': result['grid'], **result['stacked']}, result['tg'])
    assert png[:4] == b'\x89PNG'

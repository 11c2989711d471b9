"""The decisions of the active-learning loop, without AiiDA: settings, exploration preset, stop rules, stability."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_glassml.fitting import active_learning as al
from aiida_glassml.md.protocol import NVT, MDProtocolError, Ramp, exploration, stability_test


def test_study_exploration_schedule():
    """balace.yaml: 5000 K, cool at 10 K/ps to 0.01 K, a snapshot every 1e5 steps (1000 K), gamma every step."""
    protocol = exploration()
    hold, ramp = protocol.stages
    assert isinstance(hold, NVT) and (hold.temperature, hold.time) == (5000.0, 10.0)
    assert isinstance(ramp, Ramp) and (ramp.t_start, ramp.t_end, ramp.rate, ramp.ensemble) == (5000.0, 0.01, 10.0, 'nvt')
    assert protocol.dump_interval == 100_000
    assert protocol.stage_steps(hold) == 10_000
    assert protocol.stage_steps(ramp) == 499_999  # 499.999 ps at 1 fs
    assert (protocol.gamma.interval, protocol.gamma.gamma_lo, protocol.gamma.gamma_hi) == (1, 2.5, 30.0)


def test_exploration_rejects_a_bad_window_and_rate():
    with pytest.raises(MDProtocolError, match='gamma_lo .* must be below gamma_hi'):
        exploration(gamma_lo=30.0, gamma_hi=2.5)
    with pytest.raises(MDProtocolError, match='cooling_rate'):
        exploration(cooling_rate=0.0)


def test_stability_test_protocol():
    protocol = stability_test(time=0.1, thermo_interval=5)
    assert [type(s) for s in protocol.stages] == [NVT] and protocol.total_steps == 100
    assert protocol.gamma.interval == 1 and protocol.resolved_initial_temperature() == 5000.0


@pytest.mark.parametrize('settings, match', [
    ({'max_select': 0}, 'max_select'),
    ({'max_iterations': 0}, 'max_iterations'),
    ({'converged_fraction': 1.5}, 'converged_fraction'),
    ({'min_improvement': -0.1}, 'min_improvement'),
    ({'min_new_frames': -1}, 'min_new_frames'),
    ({'gamma_lo': 2.5}, 'unknown active-learning setting'),
])  # fmt: skip
def test_loop_settings_are_checked(settings, match):
    with pytest.raises(al.ActiveLearningError, match=match):
        al.validate_loop_settings(settings)


def test_gamma_window():
    al.check_gamma_window(2.5, 30.0)
    with pytest.raises(al.ActiveLearningError, match='must be below gamma_hi'):
        al.check_gamma_window(30.0, 30.0)


def test_seeds_are_distinct_per_iteration_and_reproducible():
    seeds = {al.exploration_seed(1, it, i) for it in (1, 2, 3) for i in range(50)}
    assert len(seeds) == 150
    assert al.exploration_seed(1, 2, 3) == al.exploration_seed(1, 2, 3)
    assert all(0 < al.velocity_seed(7, it, i) < 900_000_000 for it in (1, 99) for i in (0, 9999))


def test_run_classification_and_convergence():
    assert al.classify_run(True, 0, 1.2, 2.5) == 'quiet'
    assert al.classify_run(True, 0, 3.0, 2.5) == 'extrapolating'
    assert al.classify_run(False, 350, 31.0, 2.5) == 'halted'
    assert al.classify_run(False, 305, None, 2.5) == 'crashed'
    settings = al.validate_loop_settings({})
    summary = al.exploration_summary(['quiet'] * 9 + ['halted'])
    assert summary['quiet_fraction'] == pytest.approx(0.9)
    assert al.decide_after_exploration(summary, settings) == 'converged'
    summary = al.exploration_summary(['quiet'] * 8 + ['crashed', 'halted'])
    assert al.decide_after_exploration(summary, settings) is None  # a crash never counts as quiet


def test_stop_after_selection_and_fit():
    settings = al.validate_loop_settings({'min_new_frames': 5, 'max_iterations': 3, 'min_improvement': 0.05})
    assert al.decide_after_selection(4, settings) == 'few_new_frames'
    assert al.decide_after_selection(5, settings) is None
    assert al.decide_after_selection(0, al.validate_loop_settings({'min_new_frames': 0})) == 'few_new_frames'
    assert al.decide_after_fit(1, [500.0, 400.0], settings) is None  # 20 % better
    assert al.decide_after_fit(2, [500.0, 400.0, 390.0], settings) == 'no_improvement'  # 2.5 % < 5 %
    assert al.decide_after_fit(3, [500.0, 400.0, 300.0, 200.0], settings) == 'max_iterations'
    off = al.validate_loop_settings({'max_iterations': 5})
    assert al.decide_after_fit(2, [100.0, 120.0], off) is None  # min_improvement null: criterion off


def test_stability_verdict():
    time = np.linspace(0, 1, 11)
    energy = np.full(11, -500.0)
    ok = al.stability_verdict(time, energy, 100, 'completed', 0)
    assert ok['survived'] and ok['failed_at_ps'] is None and ok['simulated_ps'] == 1.0
    halted = al.stability_verdict(time[:3], energy[:3], 100, 'gamma_halt', 350, halt_time=0.011)
    assert not halted['survived'] and halted['failed_at_ps'] == 0.011 and 'gamma_hi' in halted['reason']
    blown = energy.copy()
    blown[6:] = -500.0 + 100 * 6.0  # +6 eV/atom
    verdict = al.stability_verdict(time, blown, 100, 'completed', 0)
    assert not verdict['survived'] and verdict['failed_at_ps'] == pytest.approx(0.6) and 'blow-up' in verdict['reason']
    crashed = al.stability_verdict(time[:4], energy[:4], 100, 'lost_atoms', 410)
    assert not crashed['survived'] and 'exit status 410' in crashed['reason']


def test_iteration_table_and_histogram():
    rows = [{'iteration': 1, 'runs': 3, 'quiet': 0, 'extrapolating': 1, 'halted': 2, 'crashed': 0, 'n_candidates': 40,
             'n_selected': 10, 'n_labelled': 10, 'dataset_frames': 30, 'train_force_rmse': 812.3,
             'test_force_rmse': 950.0, 'test_energy_rmse': 31.25, 'stable': False, 'outcome': 'refitted'}]
    text = al.iteration_table(rows + [{'iteration': 2, 'outcome': 'running: AseMDCalculation'}])
    lines = text.splitlines()
    assert len(lines) == 3 and lines[0].split()[:3] == ['it', 'runs', 'quiet']
    assert lines[1].split()[-5:] == ['812', '950', '31.2', 'no', 'refitted'] and lines[2].count('-') >= 10
    # the largest uncertainty of the exploration: max gamma, or a committee's σ_F,max (eV/Å) when it selected
    gamma = {**rows[0], 'max_gamma_histogram': {'max': 31.0}}
    sigma = {**rows[0], 'max_gamma_histogram': None, 'max_force_deviation_histogram': {'max': 3.456}}
    assert al.max_uncertainty(gamma) == 31.0 and al.max_uncertainty(sigma) == 3.456 and al.max_uncertainty({}) is None
    header, *cells = al.iteration_table([gamma, sigma]).splitlines()
    column = header.split().index('γ|σ') - 1  # `max γ|σ` is two words in the header
    assert [line.split()[column] for line in cells] == ['31.00', '3.46']
    histogram = al.gamma_histogram([1.0, 3.0, 31.0, None], 2.5, 30.0, bins=6)
    assert histogram['n'] == 3 and sum(histogram['counts']) == 3 and histogram['counts'][-1] == 1

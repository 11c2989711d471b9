"""Batch active learning, the science without AiiDA: loop settings, exploration seeds, the stop decision, the stability
verdict of a fitted potential and the iteration table. ``ActiveLearningWorkChain`` (``aiida_glassml.workflows``) runs
the loop; everything it decides is decided here, so it can be tested without a profile.

The loop is the NaFePO4 study's (Christensen et al., J. Mater. Chem. A 2025): explore with MD tracking the extrapolation
grade gamma, select extrapolative frames by D-optimality (``pace_select``), label them, up-fit, repeat. With the
``force_deviation`` selector (the Na3V2(PO4)3 committee study) a committee of potentials explores, tracking the largest
per-atom force standard deviation σ_F,max, and the frames with σ_lo < σ_F,max < σ_hi are selected, most uncertain first.
"""

from __future__ import annotations

import math
import typing as t

import numpy as np

#: Stop reasons, in the order they are checked within an iteration.
STOP_REASONS = {
    'converged': 'at least `converged_fraction` of the exploration runs finished without reaching gamma_lo (or sigma_lo)',
    'few_new_frames': 'the selection returned fewer than `min_new_frames` frames',
    'no_improvement': 'the test force RMSE improved by less than `min_improvement` (relative)',
    'max_iterations': '`max_iterations` iterations ran without meeting another criterion',
}

#: Loop settings (the ``settings`` of ``active_learning.yaml``); defaults are the study's.
DEFAULT_LOOP_SETTINGS: dict[str, t.Any] = {
    'max_iterations': 10,
    'max_select': 500,
    'converged_fraction': 0.9,
    'min_new_frames': 1,
    'min_improvement': None,
    'seed': 1,
    'selector': 'gamma',
    'committee_size': 4,
    'committee_holdout': 0.1,
}
#: how candidate frames are chosen: D-optimal on gamma (pace_select) or a committee's force deviation
SELECTORS = ('gamma', 'force_deviation')
#: exit statuses of an MD run stopped at its uncertainty limit (gamma_hi: 350, a committee's sigma_hi: 351)
HALT_EXIT_STATUSES = (350, 351)

#: Energy per atom (eV) a stability run may rise above its first thermo line before it counts as blown up; a melt at
#: 5000 K sits ~0.6 eV/atom above the glass, an exploding one climbs without bound.
BLOW_UP_EV_PER_ATOM = 5.0


class ActiveLearningError(ValueError):
    """Active-learning settings or inputs that cannot work; the message names the problem and the fix."""


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)


def validate_loop_settings(settings: t.Mapping | None = None) -> dict:
    """Merge ``settings`` over :data:`DEFAULT_LOOP_SETTINGS` and check every value."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_LOOP_SETTINGS))
    if unknown:
        raise ActiveLearningError(f'unknown active-learning setting(s) {unknown}; known: {sorted(DEFAULT_LOOP_SETTINGS)}.')
    merged = {**DEFAULT_LOOP_SETTINGS, **settings}
    for key in ('max_iterations', 'max_select'):
        if not _is_int(merged[key]) or merged[key] < 1:
            raise ActiveLearningError(f'`{key}` must be an integer ≥ 1, got {merged[key]!r}.')
    if not _is_int(merged['min_new_frames']) or merged['min_new_frames'] < 0:
        raise ActiveLearningError(f'`min_new_frames` must be an integer ≥ 0, got {merged["min_new_frames"]!r}.')
    fraction = merged['converged_fraction']
    if not _is_number(fraction) or not 0 < fraction <= 1:
        raise ActiveLearningError(f'`converged_fraction` must be in (0, 1] (the study: 0.9), got {fraction!r}.')
    improvement = merged['min_improvement']
    if improvement is not None and (not _is_number(improvement) or not 0 <= improvement < 1):
        raise ActiveLearningError(
            f'`min_improvement` is a relative improvement of the test force RMSE in [0, 1) (e.g. 0.02), or null to '
            f'switch the criterion off; got {improvement!r}.'
        )
    if not _is_int(merged['seed']) or not 0 < merged['seed'] < 100_000:
        raise ActiveLearningError(f'`seed` must be an integer in 1..99999, got {merged["seed"]!r}.')
    if merged['selector'] not in SELECTORS:
        raise ActiveLearningError(f'unknown `selector` {merged["selector"]!r}; use one of {SELECTORS}.')
    if not _is_int(merged['committee_size']) or not 2 <= merged['committee_size'] <= 64:
        raise ActiveLearningError(f'`committee_size` must be an integer in 2..64 (the study: 4), got '
                                  f'{merged["committee_size"]!r}.')
    holdout = merged['committee_holdout']
    if not _is_number(holdout) or not 0 < holdout < 1:
        raise ActiveLearningError(
            f'`committee_holdout` is the share of the training set each committee member leaves out (its own seeded '
            f'split, which makes the members differ), in (0, 1) e.g. 0.1; got {holdout!r}.'
        )
    return merged


def check_gamma_window(gamma_lo, gamma_hi) -> None:
    """gamma_lo < gamma_hi, both positive: frames above gamma_lo are candidates, runs stop at gamma_hi."""
    if not (_is_number(gamma_lo) and _is_number(gamma_hi)) or gamma_lo <= 0:
        raise ActiveLearningError(f'gamma_lo and gamma_hi must be positive numbers, got {gamma_lo!r} and {gamma_hi!r}.')
    if gamma_lo >= gamma_hi:
        raise ActiveLearningError(
            f'gamma_lo ({gamma_lo}) must be below gamma_hi ({gamma_hi}): frames above gamma_lo are candidates and a run '
            'stops at gamma_hi. Lower gamma_lo or raise gamma_hi (the study: 2.5 and 30).'
        )


def check_sigma_window(sigma_lo, sigma_hi) -> None:
    """0 < sigma_lo < sigma_hi (eV/Å): frames with σ_F,max between them are candidates, runs stop above sigma_hi."""
    if not (_is_number(sigma_lo) and _is_number(sigma_hi)) or sigma_lo <= 0:
        raise ActiveLearningError(f'sigma_lo and sigma_hi must be positive numbers in eV/Å, got {sigma_lo!r} and '
                                  f'{sigma_hi!r}.')  # fmt: skip
    if sigma_lo >= sigma_hi:
        raise ActiveLearningError(
            f'sigma_lo ({sigma_lo} eV/Å) must be below sigma_hi ({sigma_hi} eV/Å): frames between them are candidates '
            'and a run stops above sigma_hi. Lower sigma_lo or raise sigma_hi (the committee study: 1 and 5).'
        )


def member_seed(base_seed: int, member: int) -> int:
    """The seed of committee member ``member`` (0-based): its train/held-out split and pacemaker's seed."""
    return int(base_seed) * 100 + int(member) + 1


def select_by_force_deviation(sigma: t.Sequence[float], sigma_lo: float, sigma_hi: float, max_select: int) -> list[int]:
    """Indices of the candidate frames to label: σ_lo < σ_F,max < σ_hi, most uncertain first (ties keep candidate
    order), at most ``max_select``. Frames above σ_hi come from runs about to break and are left out."""
    values = np.asarray(sigma, dtype=float)
    inside = np.flatnonzero(np.isfinite(values) & (values > sigma_lo) & (values < sigma_hi))
    order = inside[np.argsort(-values[inside], kind='stable')]
    return [int(i) for i in order[:max_select]]


def exploration_seed(base_seed: int, iteration: int, index: int) -> int:
    """A distinct, reproducible seed for exploration structure ``index`` of ``iteration`` (1-based): re-randomised
    every iteration, identical when the same loop is rerun (so AiiDA caching can reuse finished work)."""
    return int(base_seed) * 1_000_000 + int(iteration) * 10_000 + int(index) + 1


def velocity_seed(base_seed: int, iteration: int, index: int) -> int:
    """The MD velocity seed of the same run (LAMMPS needs 1..899999999)."""
    return exploration_seed(base_seed, iteration, index) % 899_999_999 + 1


# -- exploration outcome -------------------------------------------------------------------------------------------------
def classify_run(finished_ok: bool, exit_status: int | None, max_gamma: float | None, gamma_lo: float) -> str:
    """``quiet`` (finished below gamma_lo), ``extrapolating`` (finished, reached gamma_lo), ``halted`` (stopped at
    gamma_hi, exit 350, or a committee above sigma_hi, 351: expected, its frames count) or ``crashed`` (anything else:
    reported, the loop goes on). With a committee ``max_gamma``/``gamma_lo`` are σ_F,max and sigma_lo."""
    if finished_ok:
        return 'extrapolating' if max_gamma is not None and max_gamma >= gamma_lo else 'quiet'
    if exit_status in HALT_EXIT_STATUSES:
        return 'halted'
    return 'crashed'


def exploration_summary(outcomes: t.Sequence[str]) -> dict:
    counts = {kind: int(sum(1 for o in outcomes if o == kind)) for kind in ('quiet', 'extrapolating', 'halted', 'crashed')}
    counts['runs'] = len(outcomes)
    counts['quiet_fraction'] = counts['quiet'] / len(outcomes) if outcomes else 0.0
    return counts


def decide_after_exploration(summary: t.Mapping, settings: t.Mapping) -> str | None:
    """``converged`` when enough runs stayed below gamma_lo (crashed runs count against convergence)."""
    if summary['runs'] and summary['quiet_fraction'] >= settings['converged_fraction']:
        return 'converged'
    return None


def decide_after_selection(n_selected: int, settings: t.Mapping) -> str | None:
    if n_selected < max(settings['min_new_frames'], 1):
        return 'few_new_frames'
    return None


def decide_after_fit(iteration: int, test_rmse_history: t.Sequence[float | None], settings: t.Mapping) -> str | None:
    """``no_improvement`` when the relative drop of the test force RMSE from the previous potential is below
    ``min_improvement``; ``max_iterations`` after the last allowed iteration."""
    threshold = settings['min_improvement']
    if threshold is not None and len(test_rmse_history) >= 2:
        previous, current = test_rmse_history[-2], test_rmse_history[-1]
        if previous is not None and current is not None and previous > 0:
            if (previous - current) / previous < threshold:
                return 'no_improvement'
    if iteration >= settings['max_iterations']:
        return 'max_iterations'
    return None


# -- stability test -----------------------------------------------------------------------------------------------------
def stability_verdict(
    time_ps: t.Sequence[float], potential_energy: t.Sequence[float], n_atoms: int, stop_reason: str | None,
    exit_status: int | None, halt_time: float | None = None, blow_up: float = BLOW_UP_EV_PER_ATOM,
) -> dict:  # fmt: skip
    """Did the potential survive the stability run? No gamma above gamma_hi (exit 350), no lost atoms or other crash,
    no energy blow-up (per-atom potential energy rising more than ``blow_up`` eV above its start, or non-finite).
    Returns survived, reason and the time (ps) of failure."""
    time_ps = np.asarray(time_ps, dtype=float)
    energy = np.asarray(potential_energy, dtype=float) / max(int(n_atoms), 1)
    failed_at, reason = None, None
    if energy.size:
        bad = ~np.isfinite(energy) | (energy - energy[0] > blow_up)
        if bad.any():
            failed_at, reason = float(time_ps[np.argmax(bad)]), f'energy blow-up (> {blow_up} eV/atom above the start)'
    if exit_status in HALT_EXIT_STATUSES or stop_reason in ('gamma_halt', 'force_deviation_halt'):
        when = halt_time if halt_time is not None else (float(time_ps[-1]) if time_ps.size else 0.0)
        if failed_at is None or when < failed_at:
            committee = exit_status == 351 or stop_reason == 'force_deviation_halt'
            failed_at = when
            reason = 'committee force deviation exceeded sigma_hi' if committee else 'extrapolation grade reached gamma_hi'
    elif exit_status not in (0, None):
        when = float(time_ps[-1]) if time_ps.size else 0.0
        if failed_at is None:
            failed_at, reason = when, f'the run crashed (exit status {exit_status})'
    return {'survived': failed_at is None, 'reason': reason, 'failed_at_ps': failed_at,
            'simulated_ps': float(time_ps[-1]) if time_ps.size else 0.0}  # fmt: skip


# -- reporting ----------------------------------------------------------------------------------------------------------
TABLE_COLUMNS = (
    ('iteration', 'it', '{:d}'), ('runs', 'runs', '{:d}'), ('quiet', 'quiet', '{:d}'),
    ('extrapolating', 'extrap', '{:d}'), ('halted', 'halted', '{:d}'), ('crashed', 'crashed', '{:d}'),
    ('max_uncertainty', 'max γ|σ', '{:.2f}'), ('n_candidates', 'cand', '{:d}'), ('n_selected', 'sel', '{:d}'), ('n_labelled', 'labelled', '{:d}'),
    ('dataset_frames', 'frames', '{:d}'), ('train_force_rmse', 'F train', '{:.0f}'),
    ('test_force_rmse', 'F test', '{:.0f}'), ('test_energy_rmse', 'E test', '{:.1f}'),
    ('stable', 'stable', '{}'), ('outcome', 'outcome', '{}'),
)  # fmt: skip


def iteration_table(rows: t.Sequence[t.Mapping]) -> str:
    """A fixed-width table of iteration reports (forces meV/Å, energies meV/atom); missing values print as '-'.
    ``max γ|σ``: the largest per-frame extrapolation grade (gamma selector) or committee force deviation in eV/Å
    (force_deviation selector) of the iteration's exploration."""
    header = [label for _, label, _ in TABLE_COLUMNS]
    rows = [{**row, 'max_uncertainty': max_uncertainty(row)} for row in rows]
    lines = [[_format(row.get(key), fmt) for key, _, fmt in TABLE_COLUMNS] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ['  '.join(h.rjust(w) for h, w in zip(header, widths))]
    out += ['  '.join(c.rjust(w) for c, w in zip(line, widths)) for line in lines]
    return '\n'.join(out)


def max_uncertainty(row: t.Mapping) -> float | None:
    """The exploration's largest σ_F,max (committee) or max gamma of an iteration report, or None."""
    histogram = row.get('max_force_deviation_histogram') or row.get('max_gamma_histogram') or {}
    return histogram.get('max')


def _format(value, fmt: str) -> str:
    if value is None:
        return '-'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def gamma_histogram(values: t.Sequence[float], gamma_lo: float, gamma_hi: float, bins: int = 12) -> dict:
    """Log-spaced histogram of per-frame max gamma from 1 to gamma_hi (values above fall in the last bin)."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    edges = np.geomspace(min(1.0, gamma_lo), gamma_hi, bins + 1)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {'edges': edges.tolist(), 'counts': counts.astype(int).tolist(), 'n': int(values.size),
            'max': float(values.max()) if values.size else None}  # fmt: skip

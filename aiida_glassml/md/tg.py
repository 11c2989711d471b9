"""Glass transition temperature from a cooling curve: two straight lines meeting at Tg.

Pure numpy/scipy, no AiiDA. The model is a continuous hinge,

    y(T) = y_g + s_glass (T - Tg)            for T <= Tg
    y(T) = y_g + s_liquid (T - Tg)           for T >  Tg

fitted by least squares. The breakpoint is first located by a grid scan (least-squares lines are exact for a fixed
breakpoint), then all four parameters are refined together; the Tg uncertainty is the standard error from the fit
covariance, and ``tg_interval`` is the range of breakpoints whose residual sum of squares stays within the F-test
bound of the best one (a profile interval, robust where the covariance is not).
"""

from __future__ import annotations

import dataclasses

import numpy as np


class TgFitError(ValueError):
    """The cooling curve cannot give a Tg (too few points, no temperature range, ...)."""


@dataclasses.dataclass(frozen=True)
class TgFit:
    tg: float  # K
    tg_stderr: float  # K, one standard error from the fit covariance
    tg_interval: tuple[float, float]  # K, profile interval (about 68 %)
    value_at_tg: float  # the fitted quantity at Tg
    slope_glass: float  # per K, below Tg
    slope_liquid: float  # per K, above Tg
    rss: float
    n_points: int

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data['tg_interval'] = list(self.tg_interval)
        return data


def hinge(temperature, tg, value_at_tg, slope_glass, slope_liquid):
    """The two-line model evaluated at ``temperature``."""
    dt = np.asarray(temperature, dtype=float) - tg
    return value_at_tg + np.where(dt <= 0.0, slope_glass * dt, slope_liquid * dt)


def _lines_for_breakpoint(t: np.ndarray, y: np.ndarray, tg: float) -> tuple[np.ndarray, float]:
    # For a fixed breakpoint the hinge is linear in (y_g, s_glass, s_liquid).
    dt = t - tg
    design = np.column_stack([np.ones_like(t), np.minimum(dt, 0.0), np.maximum(dt, 0.0)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    rss = float(np.sum((design @ coef - y) ** 2))
    return coef, rss


def bin_cooling_curve(temperature, values, bin_width: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Average ``values`` in temperature bins of ``bin_width`` K (the raw thermo of a ramp is noisy)."""
    t = np.asarray(temperature, dtype=float)
    y = np.asarray(values, dtype=float)
    if t.shape != y.shape:
        raise TgFitError(f'temperature and values differ in length ({t.size} vs {y.size}).')
    if bin_width <= 0:
        raise TgFitError(f'bin_width must be positive, got {bin_width}.')
    index = np.floor((t - t.min()) / bin_width).astype(int)
    bins = np.unique(index)
    return (
        np.array([t[index == b].mean() for b in bins]),
        np.array([y[index == b].mean() for b in bins]),
    )


def fit_tg(temperature, values, t_min: float | None = None, t_max: float | None = None,
           min_points_per_line: int = 3) -> TgFit:  # fmt: skip
    """Fit two lines to ``values`` (volume, energy, ...) against ``temperature`` and return Tg with its uncertainty.

    ``t_min``/``t_max`` restrict the fitted range; each line needs at least ``min_points_per_line`` points.
    """
    from scipy import optimize, stats

    t = np.asarray(temperature, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if t.shape != y.shape:
        raise TgFitError(f'temperature and values differ in length ({t.size} vs {y.size}).')
    keep = np.isfinite(t) & np.isfinite(y)
    if t_min is not None:
        keep &= t >= t_min
    if t_max is not None:
        keep &= t <= t_max
    t, y = t[keep], y[keep]
    order = np.argsort(t)
    t, y = t[order], y[order]
    n = t.size
    if n < 2 * min_points_per_line + 1:
        raise TgFitError(
            f'a Tg fit needs at least {2 * min_points_per_line + 1} points in the fitted range, got {n}; record thermo '
            'more often during the cooling ramp (smaller thermo_interval) or widen t_min/t_max.'
        )
    if np.ptp(t) <= 0:
        raise TgFitError('all points have the same temperature; a cooling curve must span a temperature range.')

    # Grid scan of the breakpoint between the points that leave enough on each side.
    lo, hi = t[min_points_per_line - 1], t[n - min_points_per_line]
    grid = np.linspace(lo, hi, 400)
    scan = np.array([_lines_for_breakpoint(t, y, g)[1] for g in grid])
    best = int(np.argmin(scan))
    coef, rss = _lines_for_breakpoint(t, y, grid[best])
    p0 = [grid[best], *coef]

    tg, params, stderr = grid[best], p0, float('nan')
    try:
        params, cov = optimize.curve_fit(hinge, t, y, p0=p0, maxfev=20000)
        if lo <= params[0] <= hi:
            tg = float(params[0])
            stderr = float(np.sqrt(cov[0, 0])) if np.all(np.isfinite(cov)) else float('nan')
            rss = float(np.sum((hinge(t, *params) - y) ** 2))
        else:
            params = p0
    except (RuntimeError, optimize.OptimizeWarning):
        params = p0

    # Profile interval: breakpoints with RSS <= RSS_min (1 + F(1, n - 4) / (n - 4)), the one-parameter bound.
    # Rescanned finely around the coarse region, whose grid spacing can exceed the interval itself.
    dof = max(n - 4, 1)
    bound = scan.min() * (1.0 + stats.f.ppf(0.6827, 1, dof) / dof)
    step = grid[1] - grid[0]
    inside = grid[scan <= bound]
    fine = np.linspace(max(lo, inside.min() - step), min(hi, inside.max() + step), 400)
    fine_scan = np.array([_lines_for_breakpoint(t, y, g)[1] for g in fine])
    inside = fine[fine_scan <= bound]
    interval = (float(inside.min()), float(inside.max())) if inside.size else (float(tg), float(tg))
    if not np.isfinite(stderr):
        stderr = 0.5 * (interval[1] - interval[0])
    return TgFit(
        tg=float(tg), tg_stderr=float(stderr), tg_interval=interval, value_at_tg=float(params[1]),
        slope_glass=float(params[2]), slope_liquid=float(params[3]), rss=float(rss), n_points=int(n),
    )  # fmt: skip


def cooling_curve(steps, columns: dict, first_step: int, last_step: int, t_start: float, t_end: float,
                  bin_width: float = 10.0) -> dict[str, np.ndarray]:  # fmt: skip
    """The cooling curve of one ramp from thermo columns, binned on the thermostat target temperature.

    ``steps`` and ``columns`` (name → array, e.g. volume, potential_energy, density, temperature) are thermo lines;
    rows with ``first_step <= step <= last_step`` belong to the ramp from ``t_start`` to ``t_end``. The x axis is the
    ramp's target temperature (noise-free and the same for every replica), in bins of ``bin_width`` K; the
    instantaneous temperature is averaged like any other column. Returns ``{'target_temperature': ..., name: ...}``.
    """
    steps = np.asarray(steps)
    if last_step <= first_step:
        raise TgFitError(f'the cooling ramp has no steps ({first_step}..{last_step}).')
    inside = (steps >= first_step) & (steps <= last_step)
    if inside.sum() < 2:
        raise TgFitError(f'only {int(inside.sum())} thermo lines fall in the cooling ramp (steps {first_step}..'
                         f'{last_step}); lower thermo_interval so the ramp is sampled.')  # fmt: skip
    fraction = (steps[inside] - first_step) / (last_step - first_step)
    target = t_start + (t_end - t_start) * fraction
    # bins anchored at t_end so every replica shares the same bin edges
    low, high = min(t_start, t_end), max(t_start, t_end)
    edges = np.arange(low, high + bin_width, bin_width)
    index = np.clip(np.digitize(target, edges) - 1, 0, len(edges) - 2)
    used = np.unique(index)
    curve = {'target_temperature': 0.5 * (edges[used] + edges[used + 1])}
    for name, values in columns.items():
        values = np.asarray(values, dtype=float)[inside]
        curve[name] = np.array([values[index == b].mean() for b in used])
    return curve

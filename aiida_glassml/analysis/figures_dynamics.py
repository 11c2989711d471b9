"""Matplotlib figures for dynamics results (PNG bytes); pure, no AiiDA imports."""

from __future__ import annotations

import numpy as np

from aiida_glassml.common.plotting import png_bytes as _png
from aiida_glassml.common.plotting import pyplot as _pyplot


def msd_figure(times: np.ndarray, msd: dict[str, np.ndarray], windows: dict[str, tuple] | None = None) -> bytes:
    """MSD per species on log-log axes, with the diffusive fit windows shaded."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4))
    positive = times > 0
    for name, values in msd.items():
        axis.loglog(times[positive], np.maximum(values[positive], 1e-12), lw=1.2, label=name)
        if windows and name in windows:
            axis.axvspan(*windows[name], color=axis.lines[-1].get_color(), alpha=0.12)
    reference = times[positive]
    if reference.size:
        axis.loglog(reference, reference / reference[-1] * max(float(np.max(v)) for v in msd.values()), 'k:', lw=0.8,
                    label='slope 1')  # fmt: skip
    axis.set_xlabel('t (ps)')
    axis.set_ylabel('MSD (Å$^2$)')
    axis.legend(fontsize=8)
    return _png(figure)


def arrhenius_figure(temperatures, D, D_err, fitted, D0: float, Ea: float, Ea_err: float) -> bytes:
    """ln D against 1000/T with the Arrhenius line through the fitted points (open symbols: not fitted)."""
    plt = _pyplot()
    kb = 8.617333262e-5
    temperatures, D = np.asarray(temperatures, float), np.asarray(D, float)
    fitted = np.asarray(fitted, bool)
    figure, axis = plt.subplots(figsize=(5, 4))
    x = 1000.0 / temperatures
    yerr = None if D_err is None else np.asarray(D_err, float) / D
    axis.errorbar(x[fitted], np.log(D[fitted] * 1e-4), yerr=None if yerr is None else yerr[fitted], fmt='o',
                  label='fitted')  # fmt: skip
    if (~fitted).any():
        axis.errorbar(x[~fitted], np.log(D[~fitted] * 1e-4), yerr=None if yerr is None else yerr[~fitted], fmt='o',
                      mfc='none', label='not fitted')  # fmt: skip
    line = np.linspace(x.min() * 0.95, x.max() * 1.05, 50)
    axis.plot(line, np.log(D0 * 1e-4) - Ea / (kb * 1000.0 / line), 'k-', lw=1,
              label=f'$E_a$ = {Ea:.3f} ± {Ea_err:.3f} eV')  # fmt: skip
    axis.set_xlabel('1000/T (K$^{-1}$)')
    axis.set_ylabel('ln D (cm$^2$/s)')
    axis.legend(fontsize=8)
    return _png(figure)


def van_hove_figure(r: np.ndarray, times: np.ndarray, curves: np.ndarray, species: str, ylabel: str) -> bytes:
    """One curve per time, e.g. 4πr²G_s(r,t) or g_d(r,t)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for time, curve in zip(times, curves):
        axis.plot(r, curve, lw=1.1, label=f't = {time:g} ps')
    axis.set_xlabel('r (Å)')
    axis.set_ylabel(ylabel)
    axis.set_title(species, fontsize=9)
    axis.legend(fontsize=8)
    return _png(figure)


def mobility_rdf_figure(r: np.ndarray, curves: dict[str, np.ndarray]) -> bytes:
    """Mobility-resolved partial g(r): fast solid, slow dashed in the same colour, stacked with an offset."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    offset = 0.0
    rows = [('fast-fast', 'slow-slow', 'fast–fast / slow–slow')]
    partners = sorted({key.split('-', 1)[1] for key in curves if key.startswith('fast-')} - {'fast', 'slow'})
    rows += [(f'fast-{p}', f'slow-{p}', f'fast–{p} / slow–{p}') for p in partners]
    for fast_key, slow_key, label in rows:
        if fast_key not in curves:
            continue
        fast = np.asarray(curves[fast_key])
        line = axis.plot(r, fast + offset, lw=1.1, label=label)[0]
        if slow_key in curves:
            axis.plot(r, np.asarray(curves[slow_key]) + offset, lw=1.1, ls='--', color=line.get_color())
        offset += max(2.0, min(float(np.nanmax(fast)), 12.0) * 0.6)
    axis.set_xlabel('r (Å)')
    axis.set_ylabel('g(r) + offset')
    axis.legend(fontsize=7, ncol=2)
    return _png(figure)


def alpha2_figure(times: np.ndarray, alpha2: dict[str, np.ndarray]) -> bytes:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for name, values in alpha2.items():
        axis.semilogx(times, values, lw=1.2, label=name)
    axis.axhline(0.0, color='0.6', lw=0.5)
    axis.set_xlabel('t (ps)')
    axis.set_ylabel('α$_2$(t)')
    axis.legend(fontsize=8)
    return _png(figure)


def bond_angle_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """Bond-angle distributions P(θ) for each triplet."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for label, (theta, p) in curves.items():
        axis.plot(theta, p, lw=1.1, label=label)
    axis.set_xlabel('θ (degrees)')
    axis.set_ylabel('P(θ) (1/degree)')
    axis.set_xlim(0, 180)
    axis.legend(fontsize=8)
    return _png(figure)

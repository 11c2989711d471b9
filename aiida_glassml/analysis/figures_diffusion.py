"""Figures of a diffusion temperature series (the study's Fig. 5 panels) as PNG bytes; pure, no AiiDA imports."""

from __future__ import annotations

import numpy as np

from aiida_glassml.common.plotting import png_bytes as _png
from aiida_glassml.common.plotting import pyplot as _pyplot

from .dynamics import KB_EV

_STYLE = {'nvt': '-', 'npt': '--', 'all': ':'}


def msd_series_figure(curves: list[dict], species: str) -> bytes:
    """MSD of ``species`` against t on log-log axes, one colour per temperature, line style per heating variant.
    ``curves``: ``{'temperature', 'variant', 'times', 'msd'}`` each."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4))
    temperatures = sorted({c['temperature'] for c in curves})
    colours = plt.cm.plasma(np.linspace(0.05, 0.85, max(len(temperatures), 1)))
    for curve in curves:
        times, msd = np.asarray(curve['times']), np.asarray(curve['msd'])
        positive = times > 0
        colour = colours[temperatures.index(curve['temperature'])]
        axis.loglog(times[positive], np.maximum(msd[positive], 1e-12), _STYLE.get(curve['variant'], '-'),
                    color=colour, lw=1.1, label=f'{curve["temperature"]:g} K {curve["variant"]}')  # fmt: skip
    axis.set_xlabel('t (ps)')
    axis.set_ylabel(f'MSD {species} (Å$^2$)')
    axis.legend(fontsize=6, ncol=2)
    return _png(figure)


def arrhenius_series_figure(fits: dict, species: str) -> bytes:
    """ln D (cm²/s) against 1000/T per heating variant with the all-T fit (thin) and the high-T fit (thick);
    ``fits``: ``{variant: {'T', 'D', 'D_err', 'all': fit dict, 'high': fit dict}}``."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 4))
    for (variant, data), marker in zip(sorted(fits.items()), 'osd^'):
        T, D, D_err = (np.asarray(data[k], float) for k in ('T', 'D', 'D_err'))
        if T.size == 0:
            continue
        x = 1000.0 / T
        points = axis.errorbar(x, np.log(D * 1e-4), yerr=D_err / D, fmt=marker, ms=4, label=f'{variant}')
        colour = points[0].get_color()
        line = np.linspace(x.min() * 0.95, x.max() * 1.05, 50)
        for key, width in (('all', 0.7), ('high', 1.6)):
            fit = data.get(key, {})
            if fit.get('fitted'):
                y = np.log(fit['D0_A2_ps'] * 1e-4) - fit['Ea_eV'] / (KB_EV * 1000.0 / line)
                where = 'all T' if key == 'all' else f'T ≥ {fit["t_min_K"]:g} K'
                label = f'{variant} {where}: $E_a$ = {fit["Ea_eV"]:.2f} ± {fit["Ea_err_eV"]:.2f} eV'
                axis.plot(line, y, '-', color=colour, lw=width, label=label)
    axis.set_xlabel('1000/T (K$^{-1}$)')
    axis.set_ylabel(f'ln D$_{{{species}}}$ (cm$^2$/s)')
    axis.legend(fontsize=6)
    return _png(figure)


def van_hove_series_figure(curves: list[dict], species: str, time_ps: float) -> bytes:
    """4πr²G_s(r, t) of ``species`` at ``time_ps``, one curve per temperature and heating variant."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4))
    temperatures = sorted({c['temperature'] for c in curves})
    colours = plt.cm.plasma(np.linspace(0.05, 0.85, max(len(temperatures), 1)))
    for curve in curves:
        axis.plot(curve['r'], curve['P_s'], _STYLE.get(curve['variant'], '-'),
                  color=colours[temperatures.index(curve['temperature'])], lw=1.1,
                  label=f'{curve["temperature"]:g} K {curve["variant"]}')  # fmt: skip
    axis.set_xlabel('r (Å)')
    axis.set_ylabel('4πr$^2$G$_s$(r,t) (Å$^{-1}$)')
    axis.set_title(f'{species}, t = {time_ps:g} ps', fontsize=9)
    axis.legend(fontsize=6, ncol=2)
    return _png(figure)


def ring_proximity_figure(groups: dict[str, dict[str, float]]) -> bytes:
    """Share of ion–ring contacts by ring size, one bar group per set (glass, fast, slow...)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4))
    sizes = sorted({int(s) for fractions in groups.values() for s in fractions})
    width = 0.8 / max(len(groups), 1)
    for k, (name, fractions) in enumerate(groups.items()):
        axis.bar(np.arange(len(sizes)) + k * width, [fractions.get(str(s), 0.0) for s in sizes], width, label=name)
    axis.set_xticks(np.arange(len(sizes)) + 0.4 - width / 2, [str(s) for s in sizes])
    axis.set_xlabel('ring size (atoms)')
    axis.set_ylabel('share of ion–ring contacts')
    axis.legend(fontsize=7)
    return _png(figure)

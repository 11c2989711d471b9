"""Pure analysis of melt-quench replicas: the cooling curve, Tg with its uncertainty and the glass densities from
each replica's thermo columns, and the cooling-curve figure. Numpy/matplotlib only, no AiiDA; the calcfunctions in
:mod:`aiida_glassml.calcfunctions.melt_quench` move data between these and nodes."""

from __future__ import annotations

import numpy as np

from aiida_glassml.md import tg as tg_fit
from aiida_glassml.md.protocol import NPT, NVT, MDProtocol, cooling_stage_index, stage_step_ranges

COOLING_COLUMNS = ('volume', 'potential_energy', 'density', 'temperature')
TG_QUANTITIES = ('volume', 'potential_energy', 'density')


def analyse_replicas(protocol: MDProtocol, thermo: dict[str, dict[str, np.ndarray]], quantity: str = 'volume',
                     bin_width: float = 50.0) -> dict:  # fmt: skip
    """Cooling curve, Tg and densities of melt-quench replicas (what the ``analyse_melt_quench`` calcfunction
    stores): ``thermo`` maps replica label → thermo columns (numpy)."""
    index = cooling_stage_index(protocol)
    if index is None:
        raise tg_fit.TgFitError('the protocol has no cooling ramp (a ramp with t_end < t_start), so no cooling curve.')
    stage = protocol.stages[index]
    first, last = stage_step_ranges(protocol)[index]
    labels = sorted(thermo)
    curves = {
        label: tg_fit.cooling_curve(thermo[label]['step'], {c: thermo[label][c] for c in COOLING_COLUMNS}, first, last,
                                    stage.t_start, stage.t_end, bin_width)  # fmt: skip
        for label in labels
    }
    grid = curves[labels[0]]['target_temperature']
    for label in labels[1:]:  # replicas share thermo steps, so their bins; guard anyway
        if not np.array_equal(curves[label]['target_temperature'], grid):
            raise tg_fit.TgFitError(f'replica {label} sampled the cooling ramp at other temperatures than {labels[0]}.')
    stacked = {c: np.vstack([curves[label][c] for label in labels]) for c in COOLING_COLUMNS}

    mean_fit = tg_fit.fit_tg(grid, stacked[quantity].mean(axis=0))
    per_replica = []
    for row in stacked[quantity]:
        try:
            per_replica.append(tg_fit.fit_tg(grid, row).tg)
        except tg_fit.TgFitError:
            per_replica.append(None)
    finite = [v for v in per_replica if v is not None]

    # Glass density: mean over the last stage when it is a hold at constant T (the study's 100 ps NPT at 300 K).
    final_stage = protocol.stages[-1]
    window = stage_step_ranges(protocol)[-1] if isinstance(final_stage, (NPT, NVT)) else None
    densities = {}
    for label in labels:
        steps, density = np.asarray(thermo[label]['step']), np.asarray(thermo[label]['density'])
        chosen = density[(steps >= window[0]) & (steps <= window[1])] if window else density[-1:]
        densities[label] = float(chosen.mean() if chosen.size else density[-1])
    values = np.array(list(densities.values()))
    return {
        'grid': grid,
        'stacked': stacked,
        'labels': labels,
        'tg': {
            **mean_fit.to_dict(),
            'quantity': quantity,
            'unit': 'K',
            'bin_width': bin_width,
            'cooling_rate': stage.rate,
            'tg_replicas': dict(zip(labels, per_replica)),
            'tg_replica_std': float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
            'method': 'two lines meeting at Tg (hinge) fitted to the replica-mean cooling curve vs ramp target T',
        },
        'densities': {
            'density': densities,
            'mean': float(values.mean()),
            'std': float(values.std(ddof=1)) if values.size > 1 else None,
            'unit': 'g/cm³',
            'window_steps': list(window) if window else None,
        },
    }


def cooling_curve_png(curve: dict, tg: dict) -> bytes:
    """PNG of volume and potential energy against ramp target temperature, replicas and mean, with the Tg fit."""
    from aiida_glassml.common.plotting import png_bytes, pyplot

    plt = pyplot()
    grid = curve['target_temperature']
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    for ax, name, label in ((axes[0], 'volume', 'volume (Å³)'), (axes[1], 'potential_energy', 'potential energy (eV)')):
        for row in np.atleast_2d(curve[name]):
            ax.plot(grid, row, color='0.7', lw=0.8)
        ax.plot(grid, np.atleast_2d(curve[name]).mean(axis=0), color='k', lw=1.5, label='replica mean')
        if name == tg['quantity']:
            ax.plot(grid, tg_fit.hinge(grid, tg['tg'], tg['value_at_tg'], tg['slope_glass'], tg['slope_liquid']),
                    color='C3', ls='--', label='two-line fit')  # fmt: skip
        ax.axvline(tg['tg'], color='C3', lw=0.8)
        ax.axvspan(*tg['tg_interval'], color='C3', alpha=0.15)
        ax.set_xlabel('ramp target temperature (K)')
        ax.set_ylabel(label)
    axes[0].set_title(f"Tg = {tg['tg']:.0f} ± {tg['tg_stderr']:.0f} K ({tg['quantity']})")
    axes[0].legend(frameon=False)
    return png_bytes(fig, tight=False)

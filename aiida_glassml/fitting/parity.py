"""Parity plots (predicted vs reference) of energies per atom and force components, as PNG bytes. No AiiDA imports."""

from __future__ import annotations

import io
import typing as t

import numpy as np

COLOURS = {'train': '#1f77b4', 'test': '#d62728'}


def _figure():
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib.figure import Figure

    return Figure(figsize=(4.2, 4.0), dpi=150, layout='constrained')


def parity_png(
    series: t.Mapping[str, tuple[np.ndarray, np.ndarray]], *, quantity: str, unit: str, mae: t.Mapping[str, float],
    mae_unit: str,
) -> bytes:  # fmt: skip
    """One parity plot: ``series`` maps a label (train/test) to (reference, predicted) arrays."""
    fig = _figure()
    axis = fig.add_subplot()
    lows, highs = [], []
    for label, (reference, predicted) in series.items():
        reference, predicted = np.asarray(reference).ravel(), np.asarray(predicted).ravel()
        if reference.size == 0:
            continue
        axis.scatter(reference, predicted, s=4, alpha=0.5, lw=0, color=COLOURS.get(label),
                     label=f'{label} (MAE {mae[label]:.1f} {mae_unit})', rasterized=True)  # fmt: skip
        lows.append(min(reference.min(), predicted.min()))
        highs.append(max(reference.max(), predicted.max()))
    if lows:
        low, high = min(lows), max(highs)
        pad = 0.03 * (high - low or 1.0)
        axis.plot([low - pad, high + pad], [low - pad, high + pad], color='0.4', lw=0.8, ls='--')
        axis.set_xlim(low - pad, high + pad)
        axis.set_ylim(low - pad, high + pad)
    axis.set_aspect('equal')
    axis.set_xlabel(f'DFT {quantity} ({unit})')
    axis.set_ylabel(f'ACE {quantity} ({unit})')
    axis.legend(loc='upper left', fontsize=7, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png')
    return buffer.getvalue()

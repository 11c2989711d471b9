"""Matplotlib figures for structure results (PNG bytes); pure, no AiiDA imports."""

from __future__ import annotations

import numpy as np

from aiida_glassml.common.plotting import png_bytes, pyplot


_png = png_bytes


def rdf_figure(r: np.ndarray, partials: dict[str, np.ndarray], cutoffs: dict[str, float] | None = None) -> bytes:
    """Partial g(r), stacked with an offset, with the bond cutoffs marked."""
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(6, 1.2 + 0.6 * len(partials)))
    offset = 0.0
    for key in sorted(partials):
        g = np.asarray(partials[key])
        axis.plot(r, g + offset, lw=1.0, label=key)
        if cutoffs and key in cutoffs:
            axis.axvline(cutoffs[key], ymin=0, ymax=1, color=axis.lines[-1].get_color(), ls=':', lw=0.8)
        axis.text(r[-1], offset + 1.0, f' {key}', va='center', fontsize=8)
        offset += max(2.0, min(float(np.nanmax(g)), 12.0) * 0.6)
    axis.set_xlabel('r (Å)')
    axis.set_ylabel('g(r) + offset')
    axis.set_xlim(0, r[-1])
    return _png(figure)


def _from_q_min(q: np.ndarray, q_min: float | None) -> np.ndarray:
    """Mask of the Q points to draw: below 2π/r_max S(Q) from a cut g(r) is truncation ripple, not structure."""
    q = np.asarray(q, dtype=float)
    return q >= q_min if q_min is not None else np.ones(len(q), dtype=bool)


def structure_factor_figure(q: np.ndarray, curves: dict[str, np.ndarray], q_min: float | None = None,
                            title: str | None = None) -> bytes:  # fmt: skip
    """Total structure factors S(Q), drawn from ``q_min`` (2π/r_max of the g(r) they come from) on."""
    plt = pyplot()

    keep = _from_q_min(q, q_min)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for label, s in curves.items():
        axis.plot(np.asarray(q)[keep], np.asarray(s)[keep], lw=1.0, label=label)
    if q_min is not None:
        axis.set_xlim(0.0, float(np.asarray(q)[-1]))
    if title:
        axis.set_title(title, fontsize=9)
    axis.axhline(1.0, color='0.6', lw=0.5)
    axis.set_xlabel('Q (Å$^{-1}$)')
    axis.set_ylabel('S(Q)')
    axis.legend()
    return _png(figure)


def ring_size_figure(distribution: dict[int, int]) -> bytes:
    """Ring-size histogram (atoms per ring)."""
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(5, 3.2))
    sizes = sorted(distribution)
    axis.bar(sizes, [distribution[s] for s in sizes], width=1.6)
    axis.set_xlabel('ring size (atoms)')
    axis.set_ylabel('rings')
    return _png(figure)


def partial_structure_factor_figure(q: np.ndarray, partials: dict[str, np.ndarray], q_min: float | None = None) -> bytes:
    """Faber–Ziman partial S_ab(Q), stacked with an offset, drawn from ``q_min`` (2π/r_max) on."""
    plt = pyplot()

    keep = _from_q_min(q, q_min)
    q = np.asarray(q, dtype=float)[keep]
    figure, axis = plt.subplots(figsize=(6, 1.2 + 0.6 * len(partials)))
    offset = 0.0
    for key in sorted(partials):
        s = np.asarray(partials[key])[keep]
        axis.plot(q, s + offset, lw=1.0)
        axis.text(q[-1], offset + 1.0, f' {key}', va='center', fontsize=8)
        offset += max(2.0, float(np.nanmax(s) - np.nanmin(s)) * 0.8)
    axis.set_xlabel('Q (Å$^{-1}$)')
    axis.set_ylabel('S$_{ab}$(Q) + offset')
    axis.set_xlim(0.0 if q_min is not None else q[0], q[-1])
    return _png(figure)


def real_space_figure(r: np.ndarray, curves: dict[str, np.ndarray], ylabel: str) -> bytes:
    """Total real-space functions (T(r), G(r), ...) against r."""
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(6, 3.5))
    for label, values in curves.items():
        axis.plot(r, values, lw=1.0, label=label)
    axis.axhline(0.0, color='0.6', lw=0.5)
    axis.set_xlabel('r (Å)')
    axis.set_ylabel(ylabel)
    axis.legend(fontsize=8)
    return _png(figure)


def r_chi_figure(x_model, y_model, x_exp, y_exp, x_range: tuple[float, float], value: float, label: str) -> bytes:
    """Model against experiment with the R_χ range shaded."""
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(x_exp, y_exp, 'k.', ms=2, label='experiment')
    axis.plot(x_model, y_model, lw=1.0, label='model')
    axis.axvspan(*x_range, color='C1', alpha=0.1)
    axis.set_title(f'{label}: R$_\\chi$ = {value:.3f} ({100 * value:.1f} %)', fontsize=9)
    axis.set_xlabel('Q (Å$^{-1}$)' if label.startswith('S') or label.startswith('F') else 'r (Å)')
    axis.set_ylabel(label)
    axis.legend(fontsize=8)
    return _png(figure)

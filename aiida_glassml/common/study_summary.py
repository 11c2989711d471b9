"""The summary of a glass study: one row per potential and composition, a Markdown table and comparison figures.

Plain Python on plain dicts and arrays (no AiiDA); :mod:`aiida_glassml.calcfunctions.study` feeds it the stages'
result nodes.
"""

from __future__ import annotations

import math
import typing as t

import numpy as np

from aiida_glassml.common.benchmark import FORMERS, STRUCTURE_COLUMNS, markdown_table, structure_row

#: table columns: key, header, format; the structure and moduli columns are the benchmark's glass table
COLUMNS = (
    ('potential', 'potential', '{}'),
    ('composition', 'composition', '{}'),
    *[c for c in STRUCTURE_COLUMNS if c[0] == 'density'],
    ('tg', 'Tg (K)', '{:.0f}'),
    ('former_cn', 'former–O CN', '{}'),
    *[c for c in STRUCTURE_COLUMNS if c[0] not in ('potential', 'glass', 'density', 'us_per_atom_step', 'note')],
    ('activation_energy', 'Ea (eV)', '{:.3f}'),
    ('conductivity', 'σ (S/cm)', '{:.2e}'),
    ('hybrid_frames', 'DFT MD frames', '{}'),
)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _find(mapping, key: str):
    """The first value of ``key`` anywhere in a nested mapping (depth first, sorted keys)."""
    if isinstance(mapping, t.Mapping):
        if key in mapping:
            return mapping[key]
        for name in sorted(mapping, key=str):
            found = _find(mapping[name], key)
            if found is not None:
                return found
    return None


def former_coordination(results: t.Mapping) -> str | None:
    """Former–O coordination numbers from the structure analysis results, e.g. ``P 4.00, Fe 4.61``."""
    coordination = results.get('coordination') or {}
    formers = [f for f in FORMERS if isinstance(coordination.get(f), t.Mapping)]
    cn = {f: _number(coordination[f].get('O')) for f in formers}
    return ', '.join(f'{f} {v:.2f}' for f, v in cn.items() if v is not None) or None


def glass_rows(glasses: t.Mapping[str, dict], analyses: t.Mapping[str, dict], elastic: t.Mapping[str, dict],
               diffusion: t.Mapping[str, dict], hybrid: t.Mapping[str, int], mobile_ion: str = 'Na') -> list[dict]:  # fmt: skip
    """One row per ``<potential>_<composition>`` key of ``glasses`` ({densities, tg}), with the other stages' numbers."""
    rows = []
    for key in sorted(glasses, key=lambda k: (not k.startswith('main_'), k)):  # the study's own potential first
        potential, _, composition = key.partition('_')
        entry = glasses[key]
        results = analyses.get(key) or {}
        row = structure_row(potential, composition, results, elastic.get(key),
                            density=_number((entry.get('densities') or {}).get('mean')))  # fmt: skip
        row.update(key=key, composition=composition, tg=_number((entry.get('tg') or {}).get('tg')),
                   former_cn=former_coordination(results))  # fmt: skip
        series = diffusion.get(key) or {}
        arrhenius = (series.get('arrhenius') or {}).get(mobile_ion, series.get('arrhenius'))
        row['activation_energy'] = _number(_find(arrhenius, 'Ea_eV'))
        row['conductivity'] = _number(_find(series.get('conductivity'), 'sigma_NE_S_cm'))
        row['hybrid_frames'] = hybrid.get(key)
        rows.append(row)
    return rows


def potential_notes(stages: t.Mapping) -> list[str]:
    """What the table's numbers rest on: the fitted potential's errors on the held-out DFT frames."""
    loop = stages.get('active_learning') or {}
    force, energy = _number(loop.get('test_force_rmse')), _number(loop.get('test_energy_rmse'))
    if force is None:
        return []
    note = (f'Potential `main`: fitted here on {loop.get("training_frames")} DFT frames ({loop.get("iterations")} '
            f'active-learning iteration(s), stop reason {loop.get("stop_reason")}); on the held-out DFT frames its '
            f'force RMSE is {force:.0f} meV/Å and its energy RMSE {energy:.1f} meV/atom.')  # fmt: skip
    if force > 500:  # a usable ACE is at ~100-200 meV/Å on such frames
        note += ' At this error the glass numbers below show the machinery, not the material.'
    return [note]


def format_table(rows: t.Sequence[dict], title: str = '', notes: t.Sequence[str] = ()) -> str:
    """A Markdown table; columns with no value in any row are left out, a missing value is shown as –."""
    return markdown_table(rows, COLUMNS, title, notes)


def _figure():
    from aiida_glassml.common.plotting import pyplot

    return pyplot()


def _png(fig) -> bytes:
    from aiida_glassml.common.plotting import png_bytes

    return png_bytes(fig)


def plot_structure_comparison(composition: str, curves: t.Mapping[str, dict]) -> bytes:
    """Overlaid X-ray S(Q) and former–O g(r) of one composition, one line per potential. ``curves``: potential ->
    {q, s, r, g, pair}."""
    plt = _figure()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for potential, curve in sorted(curves.items()):
        if curve.get('q') is not None:
            left.plot(curve['q'], curve['s'], label=potential)
        if curve.get('r') is not None:
            right.plot(curve['r'], curve['g'], label=f'{potential} ({curve["pair"]})')
    left.set(xlabel='Q (Å⁻¹)', ylabel='S(Q), X-ray', title=f'{composition}: structure factor')
    right.set(xlabel='r (Å)', ylabel='g(r)', title=f'{composition}: former–O pair distribution', xlim=(0, 6))
    for axis in (left, right):
        axis.legend(fontsize=8)
    return _png(fig)


def plot_densities(rows: t.Sequence[dict]) -> bytes:
    """Glass density per composition, one bar per potential."""
    plt = _figure()
    compositions = sorted({row['composition'] for row in rows})
    potentials = sorted({row['potential'] for row in rows})
    width = 0.8 / max(len(potentials), 1)
    fig, axis = plt.subplots(figsize=(max(4, 1.5 * len(compositions) + 2), 3.5))
    x = np.arange(len(compositions))
    for index, potential in enumerate(potentials):
        values = [next((r['density'] for r in rows if r['potential'] == potential and r['composition'] == c
                        and r['density'] is not None), np.nan) for c in compositions]  # fmt: skip
        axis.bar(x + index * width, values, width, label=potential)
    axis.set_xticks(x + width * (len(potentials) - 1) / 2, compositions)
    axis.set(ylabel='density (g/cm³)', title='Glass density')
    axis.legend(fontsize=8)
    return _png(fig)

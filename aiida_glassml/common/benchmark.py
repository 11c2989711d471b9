"""Side-by-side comparison of interatomic potentials: errors on a DFT test set and the glasses each one makes.

Plain Python on plain dicts and arrays (no AiiDA): ``PotentialBenchmarkWorkChain`` (``glassml.potential_benchmark``)
and ``benchmarks/potentials_nafepo4.py`` both call these.

Energies are compared two ways, as :func:`aiida_glassml.fitting.metrics.compute_metrics` reports them. *Raw*: the
potential's energy against the DFT energy in the potential's own convention (an ACE potential predicts energies
relative to its per-element reference energies, a universal MLIP predicts totals). *After offset*: the DFT energies of
different codes, pseudopotentials and +U values differ by a constant per atom of each element, so a per-element
offset is fitted by least squares on the frames evaluated (a handful of numbers for many frames: it removes a
reference shift, not physics) and the errors that remain are reported.
"""

from __future__ import annotations

import csv
import io
import math
import typing as t

import numpy as np

#: metrics table columns: key, header, format
METRIC_COLUMNS = (
    ('potential', 'potential', '{}'),
    ('kind', 'kind', '{}'),
    ('n_frames', 'frames', '{}'),
    ('energy_mae', 'E MAE raw (meV/atom)', '{:.1f}'),
    ('energy_rmse', 'E RMSE raw (meV/atom)', '{:.1f}'),
    ('energy_mae_offset', 'E MAE offset (meV/atom)', '{:.1f}'),
    ('energy_rmse_offset', 'E RMSE offset (meV/atom)', '{:.1f}'),
    ('force_mae', 'F MAE (meV/Å)', '{:.0f}'),
    ('force_rmse', 'F RMSE (meV/Å)', '{:.0f}'),
    ('us_per_atom_step', 'MD µs/atom-step', '{:.0f}'),
    ('note', 'note', '{}'),
)
#: glass table columns
STRUCTURE_COLUMNS = (
    ('potential', 'potential', '{}'),
    ('glass', 'glass', '{}'),
    ('density', 'ρ (g/cm³)', '{:.3f}'),
    ('qn', 'Qⁿ (network)', '{}'),
    ('pn', 'Pⁿ (P–O–P)', '{}'),
    ('bridging', 'bridging O per former', '{}'),
    ('edge_sharing', 'edge-/face-sharing pairs', '{}'),
    ('former_former', 'former–former bonds', '{}'),
    ('bulk_modulus', 'K (GPa)', '{:.1f}'),
    ('shear_modulus', 'G (GPa)', '{:.1f}'),
    ('youngs_modulus', 'E (GPa)', '{:.1f}'),
    ('us_per_atom_step', 'MD µs/atom-step', '{:.0f}'),
    ('note', 'note', '{}'),
)
FORMERS = ('P', 'Si', 'B', 'V', 'Fe')


def _number(value) -> float | None:
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        value = float(value)
        return value if math.isfinite(value) else None
    return None


# -- the metrics table ------------------------------------------------------------------------------------------------
def metric_row(label: str, kind: str, metrics: t.Mapping | None = None, note: str | None = None, **extra) -> dict:
    """One row of the metrics table; ``metrics`` as ``evaluate_potential`` reports them (meV/atom, meV/Å). A row
    without metrics (a potential that cannot be evaluated on the test set) carries its reason in ``note``."""
    row = {'potential': label, 'kind': kind, 'note': note}
    for key in ('n_frames', 'energy_mae', 'energy_rmse', 'energy_mae_offset', 'energy_rmse_offset', 'force_mae',
                'force_rmse'):  # fmt: skip
        value = (metrics or {}).get(key)
        row[key] = int(value) if key == 'n_frames' and value is not None else _number(value)
    for key, value in extra.items():
        row[key] = _number(value) if not isinstance(value, str) else value
    return row


def markdown_table(rows: t.Sequence[dict], columns, title: str = '', notes: t.Sequence[str] = (),
                   heading: str = '#') -> str:  # fmt: skip
    """Markdown of ``rows`` in ``columns`` ``(key, header, format)``: a column with no value in any row is left out,
    a missing value is shown as –; ``title`` as a ``heading`` line, then each note as a paragraph."""
    columns = [c for c in columns if any(row.get(c[0]) is not None for row in rows)]
    lines = [f'{heading} {title}', ''] if title else []
    for note in notes:
        lines += [note, '']
    lines.append('| ' + ' | '.join(header for _, header, _ in columns) + ' |')
    lines.append('|' + '|'.join(' --- ' for _ in columns) + '|')
    for row in rows:
        cells = ['–' if row.get(key) is None else fmt.format(row[key]) for key, _, fmt in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _table(rows: t.Sequence[dict], columns, title: str, notes: t.Sequence[str]) -> str:
    return markdown_table(rows, columns, title, notes, heading='##')


def format_metrics_table(rows: t.Sequence[dict], title: str = 'Errors on the DFT test set',
                         notes: t.Sequence[str] = ()) -> str:  # fmt: skip
    """Markdown; columns with no value in any row are left out, a missing value is –."""
    return _table(rows, METRIC_COLUMNS, title, notes)


def format_structure_table(rows: t.Sequence[dict], title: str = 'Glasses', notes: t.Sequence[str] = ()) -> str:
    return _table(rows, STRUCTURE_COLUMNS, title, notes)


def table_csv(rows: t.Sequence[dict], columns=METRIC_COLUMNS) -> str:
    """The rows as CSV (every column, empty for a missing value)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow([key for key, _, _ in columns])
    for row in rows:
        writer.writerow(['' if row.get(key) is None else row[key] for key, _, _ in columns])
    return buffer.getvalue()


# -- the glass table ---------------------------------------------------------------------------------------------------
def _fractions(distribution: t.Mapping) -> str:
    values = {int(n): float(v) for n, v in distribution.items() if str(n).isdigit() and _number(v) is not None}
    return ' '.join(f'{n}:{v:.2f}' for n, v in sorted(values.items()) if v >= 0.005)


def _modulus(moduli: t.Mapping, key: str) -> float | None:
    value = moduli.get(key)
    if isinstance(value, t.Mapping):
        value = value.get('mean', value.get('value'))
    return _number(value)


def structure_row(label: str, glass: str, results: t.Mapping | None, moduli: t.Mapping | None = None,
                  density: float | None = None, note: str | None = None,
                  us_per_atom_step: float | None = None) -> dict:  # fmt: skip
    """One glass: density, Qⁿ (network convention) and P–O–P Pⁿ per former, bridging anions per former
    (``A-O-B`` linkages), edge- and face-sharing former pairs, direct former–former bonds (P–P is an artefact: a
    phosphate glass has none) and elastic moduli. ``results``: the structure analysis (``analyse_structure``);
    ``moduli``: the elastic work chain's ``moduli`` (GPa); ``us_per_atom_step``: the melt-quench's MD cost."""
    results = results or {}
    moduli = moduli or {}
    formers = [f for f in FORMERS if f in (results.get('formers') or FORMERS)]
    qn = results.get('qn') or {}
    phosphate = ((results.get('qn_conventions') or {}).get('phosphate') or {}).get('qn') or {}
    bridging = results.get('bridging') or {}
    sharing = results.get('edge_sharing') or {}
    bonds = (results.get('former_former_bonds') or {}).get('counts') or {}
    return {
        'potential': label, 'glass': glass,
        'density': _number(results.get('density')) if density is None else _number(density),
        'qn': '; '.join(f'{f} {_fractions(qn[f])}' for f in formers if f in qn) or None,
        'pn': '; '.join(f'{f} {_fractions(d)}' for f, d in sorted(phosphate.items())) or None,
        'bridging': ', '.join(f'{k} {v:.2f}' for k, v in sorted(bridging.items())
                              if _number(v) is not None and k.split('-')[1] in ('O', 'S') and v >= 0.005) or None,
        'edge_sharing': ', '.join(f'{pair} {c.get("edge", 0)}/{c.get("face", 0)}' for pair, c in sorted(sharing.items())
                                  if c.get('edge') or c.get('face')) or ('none' if sharing else None),
        'former_former': ', '.join(f'{pair} {n}' for pair, n in sorted(bonds.items())) or None,
        'bulk_modulus': _modulus(moduli, 'K'), 'shear_modulus': _modulus(moduli, 'G'),
        'youngs_modulus': _modulus(moduli, 'E'), 'us_per_atom_step': _number(us_per_atom_step), 'note': note,
    }  # fmt: skip


# -- overlaid curves ---------------------------------------------------------------------------------------------------
def important_partials(names: t.Iterable[str], limit: int = 4) -> list[str]:
    """The partial g(r) worth overlaying: former–anion first, then former–former (P–P artefacts), then mobile ion–anion.
    ``names`` are array names ``g_A_B``."""
    names = [n for n in names if n.startswith('g_') and n.count('_') == 2]

    def rank(name: str) -> tuple:
        a, b = name[2:].split('_')
        anion = {'O', 'S'}
        if (a in FORMERS and b in anion) or (b in FORMERS and a in anion):
            return (0, FORMERS.index(a if a in FORMERS else b), name)
        if a in FORMERS and b in FORMERS:
            return (1, FORMERS.index(a) + FORMERS.index(b), name)
        if a in anion or b in anion:
            return (2, 0, name)
        return (3, 0, name)

    return sorted(names, key=rank)[:limit]


def plot_rdf_overlay(glass: str, curves: t.Mapping[str, t.Mapping[str, np.ndarray]],
                     partials: t.Sequence[str]) -> bytes:  # fmt: skip
    """Overlaid g(r), one panel for the total and one per partial, one line per potential. ``curves``: potential ->
    {``r``, ``g_total``, ``g_A_B``...}."""
    from aiida_glassml.common.plotting import png_bytes, pyplot

    plt = pyplot()
    panels = ['g_total', *partials]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for axis, name in zip(axes[0], panels):
        for potential, curve in sorted(curves.items()):
            if name in curve and 'r' in curve:
                axis.plot(curve['r'], curve[name], label=potential, lw=1.2)
        title = 'total' if name == 'g_total' else '–'.join(name[2:].split('_'))
        axis.set(xlabel='r (Å)', ylabel='g(r)', title=f'{glass}: {title}', xlim=(0, min(8.0, _r_max(curves))))
        axis.legend(fontsize=7)
    return png_bytes(fig)


def _r_max(curves) -> float:
    return max((float(np.max(c['r'])) for c in curves.values() if 'r' in c and len(c['r'])), default=8.0)


def plot_sq_overlay(glass: str, curves: t.Mapping[str, t.Mapping[str, np.ndarray]]) -> bytes:
    """Overlaid neutron and X-ray S(Q), one line per potential. ``curves``: potential -> {``q``, ``S_neutron``,
    ``S_xray``}."""
    from aiida_glassml.common.plotting import png_bytes, pyplot

    plt = pyplot()
    kinds = [k for k in ('S_neutron', 'S_xray') if any(k in c for c in curves.values())] or ['S_xray']
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.6 * len(kinds), 3.4), squeeze=False)
    for axis, kind in zip(axes[0], kinds):
        for potential, curve in sorted(curves.items()):
            if kind in curve and 'q' in curve:
                axis.plot(curve['q'], curve[kind], label=potential, lw=1.2)
        axis.set(xlabel='Q (Å⁻¹)', ylabel=f'S(Q), {kind[2:]}', title=f'{glass}: {kind[2:]} structure factor')
        axis.legend(fontsize=7)
    return png_bytes(fig)


__all__ = ['METRIC_COLUMNS', 'STRUCTURE_COLUMNS', 'format_metrics_table', 'format_structure_table',
           'important_partials', 'metric_row', 'plot_rdf_overlay', 'plot_sq_overlay', 'structure_row', 'table_csv']
"""The tables and figures step of ``PotentialBenchmarkWorkChain``: light bookkeeping on small Dicts and arrays, so a
calcfunction; the rows, Markdown and figures come from :mod:`aiida_glassml.common.benchmark`."""

from __future__ import annotations

import io

from aiida import orm
from aiida.engine import calcfunction

from aiida_glassml.common import benchmark


def _file(text: str | bytes, filename: str) -> orm.SinglefileData:
    data = text.encode() if isinstance(text, str) else text
    return orm.SinglefileData(io.BytesIO(data), filename=filename)


def _curves(nodes: dict) -> dict:
    """{r, g_total, g_A_B..., q, S_neutron, S_xray} of one glass from its analysis outputs."""
    curve = {}
    rdf = nodes.get('rdf')
    if rdf is not None:
        curve['r'] = rdf.get_array('r')
        curve.update({name: rdf.get_array(name) for name in rdf.get_arraynames() if name.startswith('g_')})
    real_space = nodes.get('real_space')
    if real_space is not None:
        ys = {name: values for name, values, _ in real_space.get_y()}
        if 'g_neutron' in ys:
            curve['g_total'] = ys['g_neutron']
            curve.setdefault('r', real_space.get_x()[1])
    sq = nodes.get('structure_factor')
    if sq is not None:
        curve['q'] = sq.get_x()[1]
        curve.update({name: values for name, values, _ in sq.get_y()})
    return curve


@calcfunction
def tabulate_benchmark(record: orm.Dict, index: orm.Dict, **parts) -> dict:
    """``record``: ``potentials`` (label -> kind), ``notes`` (label -> why a potential has no metrics), ``glass_notes``
    (``<label>/<glass>`` -> why a glass or its moduli are missing), ``md_cost`` (``<label>/<glass>`` -> µs per
    atom-step of its melt-quench), ``test_set`` (its description) and ``glasses``.
    ``index``: link label -> [stage, potential label, glass, name] of each part (``metrics``: metrics; ``glasses``:
    densities; ``analysis``: results, rdf, real_space, structure_factor; ``elastic``: moduli)."""
    content = record.get_dict()
    found: dict = {}
    for link, (stage, label, glass, name) in index.get_dict().items():
        found.setdefault(stage, {}).setdefault((label, glass), {})[name] = parts[link]
    outputs = {}
    potentials = content['potentials']
    notes = content.get('notes') or {}
    if content.get('test_set'):
        rows = []
        for label, kind in potentials.items():
            metrics = found.get('metrics', {}).get((label, ''), {}).get('metrics')
            rows.append(benchmark.metric_row(label, kind, metrics.get_dict() if metrics is not None else None,
                                             notes.get(label)))  # fmt: skip
        header = [f'Test set: {content["test_set"]}. Energies raw (in each potential\'s own reference) and after a '
                  'per-element offset fitted on these frames.']  # fmt: skip
        outputs['metrics_table'] = orm.Dict({'rows': rows, 'units': {'energy': 'meV/atom', 'force': 'meV/Å'}})
        outputs['metrics_markdown'] = _file(benchmark.format_metrics_table(rows, notes=header), 'metrics.md')
        outputs['metrics_csv'] = _file(benchmark.table_csv(rows), 'metrics.csv')
    glasses = content.get('glasses') or []
    if glasses:
        glass_notes = content.get('glass_notes') or {}
        md_cost = content.get('md_cost') or {}
        rows, curves = [], {}
        for glass in glasses:
            for label in potentials:
                nodes = {**found.get('glasses', {}).get((label, glass), {}),
                         **found.get('analysis', {}).get((label, glass), {})}  # fmt: skip
                moduli = found.get('elastic', {}).get((label, glass), {}).get('moduli')
                densities = nodes.get('densities')
                results = nodes.get('results')
                rows.append(benchmark.structure_row(
                    label, glass, results.get_dict() if results is not None else None,
                    moduli.get_dict() if moduli is not None else None,
                    densities.get_dict().get('mean') if densities is not None else None,
                    glass_notes.get(f'{label}/{glass}'), md_cost.get(f'{label}/{glass}')))  # fmt: skip
                curve = _curves(nodes)
                if curve:
                    curves.setdefault(glass, {})[label] = curve
        outputs['structure_table'] = orm.Dict({'rows': rows})
        outputs['structure_markdown'] = _file(benchmark.format_structure_table(rows), 'glasses.md')
        for glass, by_potential in sorted(curves.items()):
            names = set().union(*(c.keys() for c in by_potential.values()))
            partials = benchmark.important_partials(names)
            outputs[f'figure_rdf_{glass}'] = _file(benchmark.plot_rdf_overlay(glass, by_potential, partials),
                                                   f'rdf_{glass}.png')  # fmt: skip
            if any('q' in c for c in by_potential.values()):
                outputs[f'figure_sq_{glass}'] = _file(benchmark.plot_sq_overlay(glass, by_potential), f'sq_{glass}.png')
    return outputs

"""The summary step of ``GlassStudyWorkChain``: a Dict, a Markdown table and comparison figures from the stages'
results. Light bookkeeping (small Dicts and arrays), so a calcfunction; the numbers come from
:mod:`aiida_glassml.common.study_summary`."""

from __future__ import annotations

import io

from aiida import orm
from aiida.engine import calcfunction

from aiida_glassml.common import study_summary

_FORMERS = ('P', 'Si', 'B', 'V', 'Fe')


def _former_pair(rdf: orm.ArrayData) -> tuple[str, str] | None:
    names = set(rdf.get_arraynames())
    for former in _FORMERS:
        for anion in ('O', 'S'):
            for name in (f'g_{former}_{anion}', f'g_{anion}_{former}'):
                if name in names:
                    return name, f'{former}-{anion}'
    return None


def _curve(rdf: orm.ArrayData | None, sq: orm.XyData | None) -> dict:
    curve: dict = {}
    if sq is not None:
        _, q, _ = sq.get_x()
        ys = {name: values for name, values, _ in sq.get_y()}
        curve.update(q=q, s=ys.get('S_xray', next(iter(ys.values()))))
    if rdf is not None:
        pair = _former_pair(rdf)
        if pair is not None:
            curve.update(r=rdf.get_array('r'), g=rdf.get_array(pair[0]), pair=pair[1])
    return curve


def _png(data: bytes, filename: str) -> orm.SinglefileData:
    return orm.SinglefileData(io.BytesIO(data), filename=filename)


@calcfunction
def summarise_study(study: orm.Dict, index: orm.Dict, **parts) -> dict:
    """``study``: the work chain's stage record; ``index``: link label -> [stage, glass key, name] of each part
    (``glasses``: densities, tg; ``analysis``: results, rdf, structure_factor; ``elastic``: moduli; ``diffusion``:
    arrhenius, conductivity; ``hybrid``: training_set; ``benchmark``: metrics_table)."""
    from aiida_glassml.common import benchmark

    found: dict[str, dict[str, dict]] = {}
    for link, (stage, key, name) in index.get_dict().items():
        found.setdefault(stage, {}).setdefault(key, {})[name] = parts[link]

    def dicts(stage: str, name: str) -> dict:
        return {k: v[name].get_dict() for k, v in found.get(stage, {}).items() if name in v}

    glasses = {k: {n: node.get_dict() for n, node in v.items()} for k, v in found.get('glasses', {}).items()}
    diffusion = {k: {n: node.get_dict() for n, node in v.items()} for k, v in found.get('diffusion', {}).items()}
    hybrid = {k: v['training_set'].n_frames for k, v in found.get('hybrid', {}).items() if 'training_set' in v}
    rows = study_summary.glass_rows(glasses, dicts('analysis', 'results'), dicts('elastic', 'moduli'), diffusion,
                                    hybrid)  # fmt: skip
    record = study.get_dict()
    title = f'Study {record.get("study", "")}'
    markdown = study_summary.format_table(rows, title, study_summary.potential_notes(record.get('stages') or {}))
    metrics = found.get('benchmark', {}).get('test_set', {}).get('metrics_table')
    skipped = record.pop('benchmark_skipped', None) or {}
    if metrics is not None or skipped:
        metric_rows = metrics.get_dict()['rows'] if metrics is not None else []
        metric_rows += [benchmark.metric_row(label, 'calculator', note=why) for label, why in sorted(skipped.items())]
        record['benchmark'] = metric_rows
        markdown += '\n' + benchmark.format_metrics_table(metric_rows, notes=[
            'Every potential of the study on the same DFT frames (PotentialBenchmarkWorkChain). Energies raw (in each '
            'potential\'s own reference) and after a per-element offset fitted on these frames.'])  # fmt: skip
    outputs = {
        'summary': orm.Dict({**record, 'glasses': rows}),
        'table': orm.SinglefileData(io.BytesIO(markdown.encode()), filename='summary.md'),
        'figure_densities': _png(study_summary.plot_densities(rows), 'densities.png'),
    }
    by_composition: dict[str, dict] = {}
    for key, nodes in found.get('analysis', {}).items():
        potential, _, composition = key.partition('_')
        by_composition.setdefault(composition, {})[potential] = _curve(nodes.get('rdf'), nodes.get('structure_factor'))
    for composition, curves in sorted(by_composition.items()):
        data = study_summary.plot_structure_comparison(composition, curves)
        outputs[f'figure_structure_{composition}'] = _png(data, f'structure_{composition}.png')
    return outputs

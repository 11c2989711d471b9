"""Calcfunctions of ``DiffusionWorkChain``: D(T) over replicas, Arrhenius fits, Nernst–Einstein σ, mean curves,
ring–Na proximity and the figures. Light: they read the reduced outputs of ``TrajectoryAnalysisCalculation``,
never a trajectory. The science is in :mod:`aiida_glassml.analysis.diffusion_series`.

Run labels are ``T<temperature>_<variant>_<glass>``; inputs are passed as ``<kind>_<label>`` with the kinds of
:data:`KINDS` (port names allow no double underscore).
"""

from __future__ import annotations

import io

import numpy as np
from aiida.engine import calcfunction
from aiida.orm import ArrayData, Dict, SinglefileData

from aiida_glassml.analysis import diffusion_series as series
from aiida_glassml.analysis import figures_diffusion as figures
from aiida_glassml.analysis.figures_dynamics import mobility_rdf_figure


#: input name prefix → kind of node
KINDS = {'res': 'results', 'msd': 'msd', 'vh': 'van_hove', 'rdf': 'mobility_rdf', 'glass': 'structure'}


def input_name(kind: str, label: str) -> str:
    """Keyword name of a node of ``kind`` (a value of :data:`KINDS`) for run or glass ``label``."""
    return f'{next(k for k, v in KINDS.items() if v == kind)}_{label}'


def _split(inputs: dict) -> dict[str, dict]:
    """``{'results': {label: node}, 'msd': {...}, ...}`` from ``<kind>_<label>`` keyword names."""
    grouped: dict[str, dict] = {}
    for key, node in inputs.items():
        prefix, label = key.split('_', 1)
        grouped.setdefault(KINDS[prefix], {})[label] = node
    return grouped


def curve_name(*parts) -> str:
    return '_'.join(str(p).replace('.', 'p').replace('-', '_') for p in parts)


def _mean_curves(nodes: dict, results: dict, names: list[str], x_name: str) -> tuple[ArrayData, list[dict]]:
    """Replica-mean of arrays ``names`` per (variant, temperature) into one ArrayData."""
    groups: dict[tuple, list] = {}
    for label, node in nodes.items():
        data = results[label].get_dict()
        groups.setdefault((data['variant'], float(data['temperature'])), []).append(node)
    out, index = ArrayData(), []
    for (variant, temperature), members in sorted(groups.items()):
        # replicas share the grid's start and step; r grids may end earlier in a smaller (NPT) cell
        length = min(m.get_array(x_name).size for m in members)
        x = members[0].get_array(x_name)[:length]
        out.set_array(curve_name(x_name, variant, int(temperature) if temperature.is_integer() else temperature),
                      x)  # fmt: skip
        entry = {'variant': variant, 'temperature': temperature, 'n_replicas': len(members), 'arrays': {}}
        for name in names:
            if name not in members[0].get_arraynames():
                continue
            stacked = np.mean([m.get_array(name)[:length] for m in members], axis=0)
            array_name = curve_name(name, variant, int(temperature) if temperature.is_integer() else temperature)
            out.set_array(array_name, stacked)
            entry['arrays'][name] = array_name
        entry['x'] = curve_name(x_name, variant, int(temperature) if temperature.is_integer() else temperature)
        index.append(entry)
    out.base.attributes.set('curves', index)
    return out, index


@calcfunction
def aggregate_diffusion(parameters: Dict, **inputs) -> dict:
    """D(T) per species and heating variant over replicas, Arrhenius fits (all T and T ≥ ``arrhenius_t_min``), σ_NE
    at ``conductivity_temperature`` and the replica-mean MSD and van Hove curves. ``parameters``:
    ``arrhenius_t_min``, ``conductivity_temperature`` (K), ``charges``. Outputs ``diffusion``, ``arrhenius``,
    ``conductivity`` (Dict), ``msd``, ``van_hove`` (ArrayData; attribute ``curves`` indexes them)."""
    params = parameters.get_dict()
    grouped = _split(inputs)
    results = grouped['results']
    summary = series.aggregate_series(
        [node.get_dict() for node in results.values()], t_min=params.get('arrhenius_t_min'),
        conductivity_temperature=params.get('conductivity_temperature'), charges=params.get('charges'),
    )  # fmt: skip
    msd_names = sorted({n for node in grouped['msd'].values() for n in node.get_arraynames() if n.startswith('msd_')})
    msd, _ = _mean_curves(grouped['msd'], results, msd_names, 'times')
    van_hove, _ = _mean_curves(grouped['van_hove'], results, ['G_s', 'P_s'], 'r')
    first = next(iter(grouped['van_hove'].values()))
    van_hove.base.attributes.set('species', first.base.attributes.get('species'))
    van_hove.base.attributes.set('time_ps', first.base.attributes.get('time_ps'))
    outputs = {'diffusion': Dict(summary['diffusion']), 'arrhenius': Dict(summary['arrhenius']),
               'conductivity': Dict(summary['conductivity']), 'msd': msd, 'van_hove': van_hove}  # fmt: skip
    if 'mobility_rdf' in grouped:
        names = sorted({n for node in grouped['mobility_rdf'].values() for n in node.get_arraynames()} - {'rdf_r'})
        rdf, _ = _mean_curves(grouped['mobility_rdf'], results, names, 'rdf_r')
        outputs['mobility_rdf'] = rdf
    return outputs


@calcfunction
def ring_proximity_summary(parameters: Dict, **inputs) -> Dict:
    """Ring–Na proximity on each input glass (``glass_<label>``: all mobile ions) and on the fast/slow sets of the
    runs at the mobility temperature (``res_<label>`` with ``ring_proximity``): per set, the share of
    ion–ring contacts within ``ring_distance`` by ring size, pooled over glasses/replicas."""
    params = parameters.get_dict()
    grouped = _split(inputs)
    pooled: dict[str, list[dict]] = {}
    per_glass = {}
    for label, structure in sorted(grouped.get('structure', {}).items()):
        found = series.glass_ring_proximity(structure.get_ase(), params)
        per_glass[label] = found
        pooled.setdefault('glass', []).append(found['groups']['all'])
    per_run = {}
    for label, node in sorted(grouped.get('results', {}).items()):
        found = node.get_dict().get('ring_proximity')
        if not found:
            continue
        variant = node['variant']
        per_run[label] = found
        for name in ('fast', 'slow'):
            pooled.setdefault(f'{name} ({variant})', []).append(found['groups'][name])
    summary = {'distance_A': float(series.fill_run_parameters(params)['ring_distance']),
               'glasses': per_glass, 'runs': per_run, 'pooled': {}}  # fmt: skip
    for name, entries in pooled.items():
        weights = np.array([e['n_ions'] * e['mean_rings_per_ion'] for e in entries], float)
        sizes = sorted({s for e in entries for s in e['size_fraction']}, key=int)
        total = weights.sum()
        summary['pooled'][name] = {
            s: float(sum(w * e['size_fraction'].get(s, 0.0) for w, e in zip(weights, entries)) / total) if total else 0.0
            for s in sizes
        }
    return Dict(summary)


def _png(data: bytes, filename: str) -> SinglefileData:
    return SinglefileData(io.BytesIO(data), filename=filename)


@calcfunction
def plot_diffusion(arrhenius: Dict, diffusion: Dict, msd: ArrayData, van_hove: ArrayData, **extra) -> dict:
    """PNG figures (the study's Fig. 5): ``msd``, ``arrhenius``, ``van_hove`` and, when given as ``mobility_rdf`` /
    ``ring_proximity``, the fast/slow g(r) and the ring-size proximity bars."""
    species = van_hove.base.attributes.get('species')
    curves = []
    for entry in msd.base.attributes.get('curves'):
        name = f'msd_{species}'
        if name in entry['arrays']:
            curves.append({'temperature': entry['temperature'], 'variant': entry['variant'],
                           'times': msd.get_array(entry['x']), 'msd': msd.get_array(entry['arrays'][name])})  # fmt: skip
    outputs = {'msd': _png(figures.msd_series_figure(curves, species), 'msd.png')}
    fits = {}
    for variant, per_species in arrhenius.get_dict().items():
        if variant == 'all' or species not in per_species:
            continue
        rows = [r for r in diffusion[variant][species] if 'D' in r]
        fits[variant] = {'T': [r['T'] for r in rows], 'D': [r['D'] for r in rows], 'D_err': [r['D_err'] for r in rows],
                         **per_species[species]}  # fmt: skip
    outputs['arrhenius'] = _png(figures.arrhenius_series_figure(fits, species), 'arrhenius.png')
    vh = [{'temperature': e['temperature'], 'variant': e['variant'], 'r': van_hove.get_array(e['x']),
           'P_s': van_hove.get_array(e['arrays']['P_s'])} for e in van_hove.base.attributes.get('curves')]  # fmt: skip
    outputs['van_hove'] = _png(figures.van_hove_series_figure(vh, species, van_hove.base.attributes.get('time_ps')),
                               'van_hove.png')  # fmt: skip
    if 'mobility_rdf' in extra:
        rdf = extra['mobility_rdf']
        entry = rdf.base.attributes.get('curves')[0]  # the first variant at the mobility temperature
        curves = {key.removeprefix('rdf_').replace('_', '-'): rdf.get_array(name)
                  for key, name in entry['arrays'].items()}  # fmt: skip
        outputs['mobility_rdf'] = _png(mobility_rdf_figure(rdf.get_array(entry['x']), curves), 'mobility_rdf.png')
    if 'ring_proximity' in extra:
        pooled = extra['ring_proximity']['pooled']
        outputs['ring_proximity'] = _png(figures.ring_proximity_figure(pooled), 'ring_proximity.png')
    return outputs

"""Calcfunctions storing structure analysis with provenance: results, g(r) and S(Q) arrays with units, and PNG
figures made from those arrays. The science lives in :mod:`aiida_glassml.analysis`."""

from __future__ import annotations

import io

import numpy as np
from aiida.engine import calcfunction
from aiida.orm import ArrayData, Dict, SinglefileData, StructureData, XyData

from aiida_glassml.analysis import (
    AnalysisInputError,
    analyse_structure,
    compute_rdf,
    neutron_structure_factor,
    require_periodic,
    xray_structure_factor,
)
from aiida_glassml.analysis.figures_structure import rdf_figure, structure_factor_figure

ALLOWED_PARAMETERS = ('cutoffs', 'formers', 'anions', 'r_max', 'dr', 'q_max', 'lorch')


def _array_name(key: str) -> str:
    return key.replace('-', '_')


def validate_structure_parameters(structure: StructureData, parameters: dict | None) -> dict:
    """Check inputs before anything is stored; return the parameters with defaults filled in."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(ALLOWED_PARAMETERS))
    if unknown:
        raise AnalysisInputError(f'unknown parameters {unknown}; allowed are {list(ALLOWED_PARAMETERS)}.')
    require_periodic(structure.get_ase(), 'structure analysis')
    parameters.setdefault('formers', ['P', 'Fe'])
    parameters.setdefault('anions', ['O', 'S'])
    parameters.setdefault('dr', 0.02)
    parameters.setdefault('q_max', 20.0)
    parameters.setdefault('lorch', False)
    return parameters


@calcfunction
def analyse_structure_calcfunction(structure: StructureData, parameters: Dict) -> dict:
    """Outputs: ``results`` (Dict, see :func:`~aiida_glassml.analysis.analyse_structure`), ``rdf`` (ArrayData:
    ``r`` in Å, ``g_A_B`` partial g(r), ``n_A_B`` running coordination of B around A), ``structure_factor``
    (XyData: neutron and X-ray S(Q) against Q in Å⁻¹)."""
    params = parameters.get_dict()
    atoms = structure.get_ase()
    rdf = compute_rdf(atoms, r_max=params.get('r_max'), dr=params['dr'])
    results = analyse_structure(atoms, params.get('cutoffs'), params['formers'], params['anions'])
    rdf_node = ArrayData()
    rdf_node.set_array('r', rdf.r)
    units = {'r': 'angstrom'}
    for a, b in rdf.pairs:
        key = f'{a}-{b}'
        rdf_node.set_array(f'g_{_array_name(key)}', rdf.g(a, b))
        rdf_node.set_array(f'n_{_array_name(key)}', rdf.running_coordination(a, b))
        rdf_node.set_array(f'n_{_array_name(f"{b}-{a}")}', rdf.running_coordination(b, a))
        units[f'g_{_array_name(key)}'] = 'dimensionless'
    rdf_node.base.attributes.set('units', units)
    rdf_node.base.attributes.set('pairs', [f'{a}-{b}' for a, b in rdf.pairs])
    rdf_node.base.attributes.set('cutoffs', results['cutoffs'])
    q = np.arange(0.3, params['q_max'] + 1e-9, 0.02)
    _, s_neutron = neutron_structure_factor(rdf, q, lorch=params['lorch'])
    _, s_xray = xray_structure_factor(rdf, q, lorch=params['lorch'])
    sq = XyData()
    sq.set_x(q, 'Q', '1/angstrom')
    sq.set_y([s_neutron, s_xray], ['S_neutron', 'S_xray'], ['dimensionless', 'dimensionless'])
    sq.base.attributes.set('lorch', bool(params['lorch']))
    return {'results': Dict(results), 'rdf': rdf_node, 'structure_factor': sq}


@calcfunction
def plot_rdf(rdf: ArrayData) -> SinglefileData:
    """PNG of the partial g(r) in ``rdf`` (from :func:`analyse_structure_calcfunction`), cutoffs marked."""
    pairs = rdf.base.attributes.get('pairs')
    partials = {key: rdf.get_array(f'g_{_array_name(key)}') for key in pairs}
    png = rdf_figure(rdf.get_array('r'), partials, rdf.base.attributes.get('cutoffs', {}))
    return SinglefileData(io.BytesIO(png), filename='rdf.png')


@calcfunction
def plot_structure_factor(structure_factor: XyData) -> SinglefileData:
    """PNG of the total S(Q) curves in ``structure_factor``."""
    _, q, _ = structure_factor.get_x()
    curves = {name: values for name, values, _ in structure_factor.get_y()}
    return SinglefileData(io.BytesIO(structure_factor_figure(q, curves)), filename='structure_factor.png')


def run_structure_analysis(structure: StructureData, parameters: dict | None = None) -> dict:
    """Validate, then run the analysis and the figures. Returns the output nodes: results, rdf, structure_factor,
    rdf_figure, structure_factor_figure. Bad input raises before anything is stored."""
    parameters = validate_structure_parameters(structure, parameters)
    outputs = dict(analyse_structure_calcfunction(structure, Dict(parameters)))
    outputs['rdf_figure'] = plot_rdf(outputs['rdf'])
    outputs['structure_factor_figure'] = plot_structure_factor(outputs['structure_factor'])
    return outputs

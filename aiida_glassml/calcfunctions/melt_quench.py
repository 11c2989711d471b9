"""Calcfunctions of the melt-quench: cooling curve, Tg and glass densities from the replicas' thermo, and the
cooling-curve figure. The science is in :mod:`aiida_glassml.md.melt_quench_analysis`
and :mod:`aiida_glassml.md.tg`; these only move data in and out of nodes."""

from __future__ import annotations

import io

from aiida import orm
from aiida.engine import calcfunction

from aiida_glassml.md.melt_quench_analysis import COOLING_COLUMNS, TG_QUANTITIES, analyse_replicas, cooling_curve_png
from aiida_glassml.md.protocol import MDProtocol

__all__ = ('COOLING_COLUMNS', 'TG_QUANTITIES', 'analyse_melt_quench', 'plot_cooling_curve')


@calcfunction
def analyse_melt_quench(protocol: orm.Dict, analysis: orm.Dict, **thermo: orm.ArrayData) -> dict:
    """Cooling curve (binned per replica and mean), Tg with its uncertainty, and glass density per replica.

    ``analysis``: ``{'quantity': 'volume'|'potential_energy'|'density', 'bin_width': K}``; ``thermo``: the
    replicas' ``thermo`` outputs, keyed by replica label.
    """
    settings = analysis.get_dict()
    columns = {label: {name: node.get_array(name) for name in node.get_arraynames()} for label, node in thermo.items()}
    result = analyse_replicas(MDProtocol.from_dict(protocol.get_dict()), columns, settings['quantity'],
                              settings['bin_width'])  # fmt: skip
    curve = orm.ArrayData()
    curve.set_array('target_temperature', result['grid'])
    for name, table in result['stacked'].items():
        curve.set_array(name, table)  # shape (n_replicas, n_bins)
        curve.set_array(f'{name}_mean', table.mean(axis=0))
    curve.base.attributes.set('replicas', result['labels'])
    curve.base.attributes.set('units', {'target_temperature': 'K', 'temperature': 'K', 'volume': 'Å³',
                                        'potential_energy': 'eV', 'density': 'g/cm³'})  # fmt: skip
    return {'cooling_curve': curve, 'tg': orm.Dict(result['tg']), 'densities': orm.Dict(result['densities'])}


@calcfunction
def plot_cooling_curve(cooling_curve: orm.ArrayData, tg: orm.Dict) -> orm.SinglefileData:
    """The cooling-curve figure (PNG) from the data behind it."""
    curve = {name: cooling_curve.get_array(name) for name in cooling_curve.get_arraynames()}
    return orm.SinglefileData(io.BytesIO(cooling_curve_png(curve, tg.get_dict())), filename='cooling_curve.png')

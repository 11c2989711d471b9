"""Parser of :class:`~aiida_glassml.calculations.trajectory_analysis.TrajectoryAnalysisCalculation`: ``analysis.json``
and ``analysis.npz`` into ``results``, ``msd``, ``van_hove``, ``displacements`` and ``mobility_rdf``."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_glassml.analysis.diffusion_series import FILES


def _array_node(arrays, names, units: dict | None = None, **attributes) -> orm.ArrayData:
    node = orm.ArrayData()
    for name in names:
        node.set_array(name, np.asarray(arrays[name]))
    if units:
        node.base.attributes.set('units', units)
    for key, value in attributes.items():
        node.base.attributes.set(key, value)
    return node


class TrajectoryAnalysisParser(Parser):
    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        if FILES['results'] not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['results'])
        results = json.loads(retrieved.base.repository.get_object_content(FILES['results']))
        if 'error' in results:
            return self.exit_codes.ERROR_ANALYSIS.format(error=results['error'])
        if FILES['arrays'] not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['arrays'])
        with retrieved.base.repository.open(FILES['arrays'], mode='rb') as handle:
            with np.load(handle) as data:
                arrays = {key: data[key] for key in data.files}
        mobile = results['mobility']['species']
        msd_names = ['times', *sorted(k for k in arrays if k.startswith('msd_'))]
        self.out('results', orm.Dict(results))
        self.out('msd', _array_node(arrays, msd_names, {'times': 'ps', 'msd': 'angstrom^2'},
                                    temperature=results['temperature'], variant=results.get('variant')))
        self.out('van_hove', _array_node(arrays, ('r', 'G_s', 'P_s'),
                                         {'r': 'angstrom', 'G_s': '1/angstrom^3', 'P_s': '1/angstrom'},
                                         species=mobile, time_ps=results['van_hove_time_ps'],
                                         temperature=results['temperature'], variant=results.get('variant')))
        self.out('displacements', _array_node(arrays, ('ion_index', 'displacement', 'fast', 'slow'),
                                              {'displacement': 'angstrom'}, species=mobile,
                                              time_ps=results['mobility']['time_ps']))  # fmt: skip
        rdf = sorted(k for k in arrays if k.startswith('rdf_'))
        if rdf:
            self.out('mobility_rdf', _array_node(arrays, rdf, {'rdf_r': 'angstrom'},
                                                 pairs=results.get('mobility_rdf_pairs', []),
                                                 temperature=results['temperature'], variant=results.get('variant')))
        return None

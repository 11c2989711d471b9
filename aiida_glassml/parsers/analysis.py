"""Parser of :class:`~aiida_glassml.calculations.analysis.AnalysisCalculation`: ``analysis.json`` and
``analysis.npz`` into the same output nodes the analysis calcfunctions make (:func:`output_nodes` serves both)."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_glassml.analysis.jobs import FILES, read_outputs


def output_nodes(descriptions: dict) -> dict:
    """Unstored nodes of the output descriptions of :mod:`aiida_glassml.analysis.jobs`."""
    nodes = {}
    for name, description in descriptions.items():
        kind = description['kind']
        if kind == 'dict':
            nodes[name] = orm.Dict(description['value'])
            continue
        arrays = description['arrays']
        if kind == 'xy':
            node = orm.XyData()
            node.set_x(np.asarray(arrays['x']), *description['x'])
            y_names = [y_name for y_name, _ in description['y']]
            node.set_y([np.asarray(arrays[y_name]) for y_name in y_names], y_names,
                       [unit for _, unit in description['y']])  # fmt: skip
        elif kind == 'array':
            node = orm.ArrayData()
            for key, value in arrays.items():
                node.set_array(key, np.asarray(value))
        else:
            raise ValueError(f'unknown output kind {kind!r} of {name!r}')
        for key, value in description.get('attributes', {}).items():
            node.base.attributes.set(key, value)
        nodes[name] = node
    return nodes


class AnalysisParser(Parser):
    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        task = self.node.inputs.task.value
        if FILES['results'] not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['results'])
        written = json.loads(retrieved.base.repository.get_object_content(FILES['results']))
        if 'error' in written:
            return self.exit_codes.ERROR_ANALYSIS.format(task=task, error=written['error'])
        if FILES['arrays'] not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['arrays'])
        with retrieved.base.repository.open(FILES['arrays'], mode='rb') as handle:
            with np.load(handle, allow_pickle=False) as data:
                descriptions = read_outputs(written, data)
        for name, node in output_nodes(descriptions).items():
            self.out(name, node)
        return None

"""Parser of :class:`~aiida_glassml.calculations.potential_label.PotentialLabelCalculation`: ``labels.npz`` into an
``ArrayData`` and ``results.json`` into a ``Dict``."""

from __future__ import annotations

import io
import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_glassml.calculations.md_outputs import scheduler_hit_walltime
from aiida_glassml.labeling.potential import FILES, LABEL_ARRAYS

__all__ = ('PotentialLabelParser',)


class PotentialLabelParser(Parser):
    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        if FILES['results'] not in names:
            if scheduler_hit_walltime(self.node):
                return self.exit_codes.ERROR_OUT_OF_WALLTIME
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['results'])
        try:
            results = json.loads(retrieved.base.repository.get_object_content(FILES['results']))
        except json.JSONDecodeError as exc:
            return self.exit_codes.ERROR_OUTPUT_UNREADABLE.format(filename=FILES['results'], error=exc)
        if results.get('status') != 'completed':
            return self.exit_codes.ERROR_POTENTIAL.format(error=results.get('message', 'no message'))
        if FILES['labels'] not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['labels'])
        try:
            content = retrieved.base.repository.get_object_content(FILES['labels'], mode='rb')
            with np.load(io.BytesIO(content), allow_pickle=False) as data:
                arrays = {name: data[name] for name in LABEL_ARRAYS}
        except (OSError, ValueError, KeyError) as exc:
            return self.exit_codes.ERROR_OUTPUT_UNREADABLE.format(filename=FILES['labels'], error=exc)
        expected = sorted(self.node.inputs.structures)
        if results.get('labels') != expected or len(arrays['n_atoms']) != len(expected):
            return self.exit_codes.ERROR_INCOMPLETE.format(found=len(arrays['n_atoms']), expected=len(expected))
        labels = orm.ArrayData()
        for name, array in arrays.items():
            labels.set_array(name, array)
        labels.base.attributes.set('labels', expected)
        self.out('labels', labels)
        self.out('results', orm.Dict(results))
        return None

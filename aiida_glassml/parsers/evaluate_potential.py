"""Parser of :class:`~aiida_glassml.calculations.evaluate_potential.EvaluatePotentialCalculation`: ``metrics.json``,
``frame_errors.npz`` and the parity PNGs into ``metrics``, ``frame_errors``, ``energy_parity`` and ``force_parity``."""

from __future__ import annotations

import io
import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_glassml.fitting.evaluate_job import ERROR_ARRAYS, ERROR_UNITS, FILES


class EvaluatePotentialParser(Parser):
    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        if FILES['metrics'] not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['metrics'])
        metrics = json.loads(retrieved.base.repository.get_object_content(FILES['metrics']))
        if 'error' in metrics:
            return self.exit_codes.ERROR_EVALUATION.format(error=metrics['error'])
        wanted = [FILES['frame_errors']]
        if self.node.inputs.parity.value:
            wanted += [FILES['energy_parity'], FILES['force_parity']]
        for filename in wanted:
            if filename not in names:
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=filename)
        errors = orm.ArrayData()
        with retrieved.base.repository.open(FILES['frame_errors'], mode='rb') as handle:
            with np.load(handle, allow_pickle=False) as data:
                for key in ERROR_ARRAYS:
                    errors.set_array(key, np.asarray(data[key]))
        errors.base.attributes.set('units', dict(ERROR_UNITS))
        self.out('metrics', orm.Dict(metrics))
        self.out('frame_errors', errors)
        if self.node.inputs.parity.value:
            for name in ('energy_parity', 'force_parity'):
                content = retrieved.base.repository.get_object_content(FILES[name], mode='rb')
                self.out(name, orm.SinglefileData(io.BytesIO(content), filename=FILES[name]))
        return None

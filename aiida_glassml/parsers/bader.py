"""Parser of :class:`~aiida_glassml.calculations.bader.BaderCalculation`: ``bader.json`` (the summary) and
``bader.npz`` (per-atom charges, populations, volumes)."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_glassml.analysis.bader import FILES


class BaderParser(Parser):
    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        if FILES['results'] not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['results'])
        summary = json.loads(retrieved.base.repository.get_object_content(FILES['results']))
        if 'error' in summary:
            return self.exit_codes.ERROR_BADER.format(error=summary['error'])
        if FILES['arrays'] not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['arrays'])
        charges = orm.ArrayData()
        with retrieved.base.repository.open(FILES['arrays'], mode='rb') as handle:
            with np.load(handle, allow_pickle=False) as data:
                for name in data.files:
                    charges.set_array(name, np.asarray(data[name]))
        charges.base.attributes.set('units', summary['units'])
        self.out('charges', charges)
        self.out('summary', orm.Dict(summary))
        return None

"""Parser of :class:`~aiida_glassml.calculations.pacemaker.PacemakerCalculation`.

Outputs the fitted potential (yaml + yace + asi, metrics as attribute) and a metrics Dict computed from pacemaker's
own predictions (``train_pred.pckl.gzip``/``test_pred.pckl.gzip``) with the conventions of
:mod:`aiida_glassml.fitting.metrics`. An interrupted fit (no final potential, an interim one present) gives the
restartable exit code 400/401 with ``interim_potential`` attached.
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_glassml.calculations import pacemaker as calc
from aiida_glassml.common.ace import AcePotentialError
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.fitting import input_yaml
from aiida_glassml.fitting.metrics import frame_errors, summarise


def metrics_from_predictions(path: pathlib.Path) -> dict:
    """Metrics from a pacemaker predictions pickle (energy_corrected vs energy_pred, forces vs forces_pred)."""
    import pandas as pd

    frame = pd.read_pickle(path, compression='gzip')
    n_atoms = np.array([len(f) for f in frame['forces']], dtype=np.int64)
    errors = frame_errors(
        n_atoms, frame['energy_corrected'].to_numpy(float), frame['energy_pred'].to_numpy(float),
        np.concatenate([np.asarray(f) for f in frame['forces']]), np.concatenate([np.asarray(f) for f in frame['forces_pred']]),
    )  # fmt: skip
    return summarise(errors)


def count_iterations(text: str) -> int:
    """Optimiser iterations in pacemaker's metrics.txt (one row per iteration; iteration 0 is each initial state)."""
    lines = [line.split() for line in text.splitlines()[1:] if line.strip()]
    return sum(1 for row in lines if len(row) > 2 and row[2] != '0')


class PacemakerParser(Parser):
    def parse(self, **kwargs):
        temporary = kwargs.get('retrieved_temporary_folder')
        if temporary is None:
            return self.exit_codes.ERROR_NO_RETRIEVED_TEMPORARY_FOLDER
        temporary = pathlib.Path(temporary)
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())

        def read(name: str) -> str:
            return retrieved.base.repository.get_object_content(name, mode='r') if name in names else ''

        yaml_path = temporary / input_yaml.OUTPUT_POTENTIAL_FILENAME
        if not yaml_path.is_file():
            return self._interrupted(names, read)

        activeset_log = read(calc.STDOUT['activeset']) + read(calc.STDERR['activeset'])
        if 'Insufficient atomic environments' in activeset_log:
            return self.exit_codes.ERROR_INSUFFICIENT_ENVIRONMENTS.format(message=_tail(activeset_log))
        yace_path = temporary / calc.YACE_FILENAME
        if not yace_path.is_file():
            return self.exit_codes.ERROR_YACE_MISSING.format(
                message=_tail(read(calc.STDERR['yaml2yace']) + read(calc.STDOUT['yaml2yace']))
            )
        asi_path = temporary / calc.ASI_FILENAME
        if not asi_path.is_file():
            return self.exit_codes.ERROR_ACTIVE_SET_MISSING.format(message=_tail(activeset_log))

        train_pred = temporary / calc.TRAIN_PREDICTIONS
        if not train_pred.is_file():
            return self.exit_codes.ERROR_PREDICTIONS_MISSING
        metrics = {f'train_{k}': v for k, v in metrics_from_predictions(train_pred).items()}
        test_pred = temporary / calc.TEST_PREDICTIONS
        if test_pred.is_file():
            metrics.update({f'test_{k}': v for k, v in metrics_from_predictions(test_pred).items()})
        try:
            potential = AcePotentialData(yaml=yaml_path, yace=yace_path, asi=asi_path)
        except AcePotentialError as exc:
            return self.exit_codes.ERROR_INVALID_POTENTIAL.format(message=str(exc))
        functions = potential.base.attributes.get('functions_per_element') or {}
        metrics.update({
            'n_functions': int(sum(functions.values())),
            'n_functions_per_element': functions,
            'n_iterations': count_iterations(read('metrics.txt')),
            'units': {'energy': 'meV/atom', 'force': 'meV/Å'},
        })  # fmt: skip
        potential.base.attributes.set('metrics', metrics)
        self.out('potential', potential)
        self.out('metrics', orm.Dict(metrics))
        return ExitCode(0)

    def _interrupted(self, names: set, read):
        """No final potential: restartable if an interim one exists, otherwise pacemaker failed."""
        interim = sorted((n for n in names if re.fullmatch(r'interim_potential_\d+\.yaml', n)),
                         key=lambda n: int(re.findall(r'\d+', n)[0]))  # fmt: skip
        if not interim:
            log = read(calc.STDERR['pacemaker']) or read(calc.LOG_FILENAME)
            return self.exit_codes.ERROR_PACEMAKER_FAILED.format(message=_tail(log))
        content = self.retrieved.base.repository.get_object_content(interim[-1], mode='rb')
        try:
            self.out('interim_potential', AcePotentialData(yaml=content))
        except AcePotentialError as exc:
            return self.exit_codes.ERROR_INVALID_POTENTIAL.format(message=f'interim potential: {exc}')
        scheduler_exit = self.node.exit_status
        walltime = self.node.process_class.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME.status
        if scheduler_exit == walltime:
            return self.exit_codes.ERROR_OUT_OF_WALLTIME
        return self.exit_codes.ERROR_FIT_INTERRUPTED


def _tail(text: str, lines: int = 5) -> str:
    return ' | '.join(line.strip() for line in text.strip().splitlines()[-lines:]) or '(no output)'

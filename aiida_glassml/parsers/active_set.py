"""Parser of :class:`~aiida_glassml.calculations.active_set.ActiveSetCalculation`: the input potential's .yaml and
.yace with the new ``.asi`` as a new ``AcePotentialData`` (metrics carried over)."""

from __future__ import annotations

import pathlib

from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_glassml.calculations import active_set as calc
from aiida_glassml.data.ace_potential import AcePotentialData, AcePotentialError


class ActiveSetParser(Parser):
    def parse(self, **kwargs):
        temporary = kwargs.get('retrieved_temporary_folder')
        if temporary is None:
            return self.exit_codes.ERROR_NO_RETRIEVED_TEMPORARY_FOLDER
        names = set(self.retrieved.base.repository.list_object_names())
        log = ''.join(self.retrieved.base.repository.get_object_content(n, mode='r')
                      for n in (calc.STDOUT, calc.STDERR) if n in names)  # fmt: skip
        if 'Insufficient atomic environments' in log:
            return self.exit_codes.ERROR_INSUFFICIENT_ENVIRONMENTS.format(message=_tail(log))
        asi = pathlib.Path(temporary) / calc.ASI_FILENAME
        if not asi.is_file():
            return self.exit_codes.ERROR_ACTIVE_SET_MISSING.format(message=_tail(log))
        source = self.node.inputs.potential
        repository = source.base.repository
        try:
            potential = AcePotentialData(
                yaml=repository.get_object_content(AcePotentialData.YAML, mode='rb'),
                yace=repository.get_object_content(AcePotentialData.YACE, mode='rb'),
                asi=asi, metrics=source.metrics,
            )  # fmt: skip
        except AcePotentialError as exc:
            return self.exit_codes.ERROR_INVALID_ACTIVE_SET.format(message=str(exc))
        self.out('potential', potential)
        return ExitCode(0)


def _tail(text: str, lines: int = 5) -> str:
    return ' | '.join(line.strip() for line in text.strip().splitlines()[-lines:]) or '(no output)'

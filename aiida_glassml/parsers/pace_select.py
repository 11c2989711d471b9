"""Parser of :class:`~aiida_glassml.calculations.pace_select.PaceSelectCalculation`: the frames ``pace_select`` chose,
each mapped back to its candidate (source run, MD step, max gamma), as StructureData ``selected_NNNN`` and a
``selection`` Dict."""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_glassml.calculations import pace_select as calc
from aiida_glassml.fitting import selection


class PaceSelectParser(Parser):
    def parse(self, **kwargs):
        temporary = kwargs.get('retrieved_temporary_folder')
        if temporary is None:
            return self.exit_codes.ERROR_NO_RETRIEVED_TEMPORARY_FOLDER
        names = set(self.retrieved.base.repository.list_object_names())
        stdout, stderr = (self.retrieved.base.repository.get_object_content(n, mode='r') if n in names else ''
                          for n in (calc.STDOUT, calc.STDERR))  # fmt: skip
        path = pathlib.Path(temporary) / calc.SELECTED_FILENAME
        if not path.is_file():
            if 'Traceback' in stderr or 'Error' in stderr:
                return self.exit_codes.ERROR_PACE_SELECT_FAILED.format(message=error_line(stderr))
            return self.exit_codes.ERROR_SELECTION_MISSING.format(message=error_line(stderr + stdout))
        try:
            selected = selection.read_selection(path)
        except selection.SelectionOutputError as exc:
            return self.exit_codes.ERROR_SELECTION_UNREADABLE.format(message=str(exc))

        pool = selection.candidate_pool(calc.candidate_sources(self.node.inputs.candidates))
        try:
            indices = selection.map_selection(selected, pool)
        except selection.SelectionOutputError as exc:
            return self.exit_codes.ERROR_SELECTION_UNMATCHED.format(message=str(exc))
        settings = selection.validate_selection_settings(
            self.node.inputs.settings.get_dict() if 'settings' in self.node.inputs else None)
        summary = selection.selection_summary(pool, indices, settings['max_select'],
                                              selection.selectable_count(stderr + stdout))  # fmt: skip
        for record, index in zip(summary['frames'], indices):
            structure = orm.StructureData(ase=pool['ase_atoms'].iloc[index])
            structure.label = f'{record["source"]}:{record["step"]}'
            self.out(f'structures.{record["key"]}', structure)
        self.out('selection', orm.Dict(summary))
        return ExitCode(0)


def error_line(text: str) -> str:
    """The last error line of a log (a Python exception's ``Type: message``), else its last line, as one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if 'Error' in line or 'error' in line]
    return (errors or lines or ['(no output)'])[-1]

"""``PaceSelectCalculation``: D-optimal (MaxVol) selection of active-learning candidates with pacemaker's
``pace_select``, given an ACE potential with its active set and the extrapolative frames of MD runs.

The candidates are the ``extrapolative_trajectory`` outputs of the MD runs (one TrajectoryData per run, keyed by the
run's label). Candidate pool, command line and read-back are in :mod:`aiida_glassml.fitting.selection`; the inputs
are checked (active set, elements covered, settings, candidates present) before anything is stored.
"""

from __future__ import annotations

import collections
import io

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.fitting import selection
from aiida_glassml.fitting.settings import FitSettingsError

DATA_FILENAME = 'candidates.pckl.gzip'
POTENTIAL_FILENAME = 'potential.yaml'
ASI_FILENAME = 'potential.asi'
SELECTED_FILENAME = 'selected.pkl.gz'
STDOUT, STDERR = 'select.out', 'select.err'


def check_potential(potential: AcePotentialData) -> str | None:
    if not potential.has_active_set:
        return (f'potential {potential.pk if potential.is_stored else "(unstored)"} has no active set (.asi), which '
                'pace_select needs; build one with ActiveSetCalculation (`glassml.pace_activeset`, or '
                '`aiida_glassml.calcfunctions.potential.build_active_set`) or import it with '
                '`aiida-glassml data import potential YAML --asi ASI`.')  # fmt: skip
    return None


def check_candidates(potential: AcePotentialData, candidates, settings: dict | None = None) -> str | None:
    """None, or one line naming what is wrong with the candidate trajectories, or with a memory limit too small for
    them (reads only their attributes)."""
    if not candidates:
        return ('no candidates: give at least one TrajectoryData under `candidates` (the `extrapolative_trajectory` '
                'outputs of the MD runs, keyed by run label).')  # fmt: skip
    empty = sorted(label for label, trajectory in candidates.items() if trajectory.numsteps == 0)
    if empty:
        return f'candidates {empty} hold no frames; leave them out.'
    covered = set(potential.elements)
    for label in sorted(candidates):
        missing = sorted(set(candidates[label].symbols) - covered)
        if missing:
            return (f'candidates {label!r} contain {missing} but the potential covers {potential.elements}; select '
                    'with a potential fitted to every element of the MD runs.')  # fmt: skip
    atom_counts = collections.Counter()
    for trajectory in candidates.values():
        atom_counts.update({e: n * trajectory.numsteps for e, n in collections.Counter(trajectory.symbols).items()})
    try:
        selection.check_memory_limit(selection.validate_selection_settings(settings),
                                     potential.base.attributes.get('functions_per_element') or {}, atom_counts,
                                     sum(trajectory.numsteps for trajectory in candidates.values()))  # fmt: skip
    except FitSettingsError as exc:
        return str(exc)
    return None


def validate_potential(value, _ctx=None) -> str | None:
    return None if value is None else check_potential(value)


def validate_settings(value, _ctx=None) -> str | None:
    if value is None:
        return None
    try:
        selection.validate_selection_settings(value.get_dict())
    except FitSettingsError as exc:
        return str(exc)
    return None


def validate_inputs(value, ctx=None) -> str | None:
    # exposed in a work chain without these ports: the candidates are checked when the job itself is built
    if ctx is not None and not all(name in ctx for name in ('potential', 'candidates')):
        return None
    if 'potential' not in value:
        return None
    settings = value['settings'].get_dict() if 'settings' in value else None
    if validate_settings(value.get('settings')):
        settings = None  # the settings port reports it
    return check_candidates(value['potential'], value.get('candidates') or {}, settings)


def candidate_sources(candidates) -> list[selection.CandidateSource]:
    """The candidate trajectories as :class:`~aiida_glassml.fitting.selection.CandidateSource`, sorted by label."""
    sources = []
    for label in sorted(candidates):
        trajectory = candidates[label]
        names = trajectory.get_arraynames()
        sources.append(selection.CandidateSource(
            label=label, uuid=trajectory.uuid, symbols=trajectory.symbols, positions=trajectory.get_positions(),
            cells=trajectory.get_cells(), steps=trajectory.get_stepids(),
            max_gamma=trajectory.get_array('max_gamma') if 'max_gamma' in names else None,
            pbc=tuple(trajectory.pbc or (True, True, True)),
        ))  # fmt: skip
    return sources


class PaceSelectCalculation(CalcJob):
    """Select at most ``max_select`` of the ``candidates`` frames with ``pace_select`` (MaxVol on the B-projections,
    the potential's active set counting as already covered)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='The `pace_select` code.')
        spec.input('potential', valid_type=AcePotentialData, validator=validate_potential,
                   help='The potential the MD ran with; it must have its active set (.asi).')  # fmt: skip
        spec.input_namespace('candidates', valid_type=orm.TrajectoryData, dynamic=True,
                             help='Candidate frames per source run (label -> its `extrapolative_trajectory`).')
        spec.input('settings', valid_type=orm.Dict, required=False, validator=validate_settings,
                   help='max_select (500), gamma_tolerance (1.01), maxvol_iters (300), maxvol_refinement (2), '
                        'batch_size (auto | null | frames), memory_limit (auto | e.g. 4GB).')  # fmt: skip
        spec.inputs.validator = validate_inputs
        options = spec.inputs['metadata']['options']
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False
        options['parser_name'].default = 'glassml.pace_select'
        options['output_filename'].default = STDOUT

        spec.output_namespace('structures', valid_type=orm.StructureData, dynamic=True,
                              help='Selected frames, keys selected_0000, selected_0001, ... in selection order.')
        spec.output('selection', valid_type=orm.Dict,
                    help='n_candidates, n_candidates_per_source, n_selected, n_selectable, max_select and `frames`: '
                         'per selected frame its key, source, source_uuid, step, frame, max_gamma, candidate_index.')
        spec.default_output_node = 'selection'
        spec.exit_code(300, 'ERROR_NO_RETRIEVED_TEMPORARY_FOLDER', message='The temporary retrieved folder is missing.')
        spec.exit_code(301, 'ERROR_PACE_SELECT_FAILED', message='pace_select failed: {message}')
        spec.exit_code(302, 'ERROR_SELECTION_MISSING', message='pace_select wrote no selection file: {message}')
        spec.exit_code(303, 'ERROR_SELECTION_UNREADABLE', message='the selection file cannot be read: {message}')
        spec.exit_code(304, 'ERROR_SELECTION_UNMATCHED',
                       message='the selection does not match the candidates: {message}')

    def prepare_for_submission(self, folder):
        settings = selection.validate_selection_settings(
            self.inputs.settings.get_dict() if 'settings' in self.inputs else None)
        problem = check_potential(self.inputs.potential) or check_candidates(
            self.inputs.potential, dict(self.inputs.candidates), settings)
        if problem:
            raise ValueError(problem)
        pool = selection.candidate_pool(candidate_sources(self.inputs.candidates))
        selection.write_candidate_pool(pool, folder.get_abs_path(DATA_FILENAME))
        repository = self.inputs.potential.base.repository
        for name, target in ((AcePotentialData.YAML, POTENTIAL_FILENAME), (AcePotentialData.ASI, ASI_FILENAME)):
            content = repository.get_object_content(name, mode='rb')
            folder.create_file_from_filelike(io.BytesIO(content), target, mode='wb')

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = selection.select_cmdline(settings, len(pool), DATA_FILENAME, POTENTIAL_FILENAME,
                                                           ASI_FILENAME, SELECTED_FILENAME)  # fmt: skip
        codeinfo.stdout_name, codeinfo.stderr_name = STDOUT, STDERR

        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [STDOUT, STDERR]
        calcinfo.retrieve_temporary_list = [SELECTED_FILENAME]
        return calcinfo

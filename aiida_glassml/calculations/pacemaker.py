"""``PacemakerCalculation``: fit an ACE potential with pacemaker, then convert it (``pace_yaml2yace``) and build its
active set (``pace_activeset``) in the same job.

The three programs are separate registered codes run one after another (``CodeRunMode.SERIAL``), each with its own
stdout/stderr, so the parser can tell which step failed. The fit settings are validated and the training data
checked (elements, test fraction, atomic environments per basis function) before anything is stored; the pure
checks live in :mod:`aiida_glassml.fitting.settings`.
"""

from __future__ import annotations

import dataclasses
import io

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo, CodeRunMode
from aiida.engine import CalcJob

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting import input_yaml
from aiida_glassml.fitting.active_set import activeset_cmdline
from aiida_glassml.fitting import settings as fit_settings
from aiida_glassml.fitting import tensorpot
from aiida_glassml.fitting.split import atom_counts, split_frameset

INPUT_FILENAME = 'input.yaml'
LOG_FILENAME = 'log.txt'
FITTING_DATA_FILENAME = 'fitting_data_info.pckl.gzip'
YACE_FILENAME = 'output_potential.yace'
ASI_FILENAME = 'output_potential.asi'
STDOUT = {'pacemaker': 'pacemaker.out', 'yaml2yace': 'yaml2yace.out', 'activeset': 'activeset.out'}
STDERR = {'pacemaker': 'pacemaker.err', 'yaml2yace': 'yaml2yace.err', 'activeset': 'activeset.err'}
TRAIN_PREDICTIONS = 'train_pred.pckl.gzip'
TEST_PREDICTIONS = 'test_pred.pckl.gzip'
INTERIM_PATTERN = 'interim_potential_[0-9]*.yaml'


def write_portable_pickle(frames: FrameSet, path: str) -> None:
    """Write ``frames`` as pacemaker's gzipped DataFrame pickle, readable by pandas 2 as well as 3: tensorpotential
    needs pandas < 3, which cannot unpickle pandas 3's ``str`` columns, so strings are stored as plain objects."""
    import pandas as pd

    frame = frames.to_pacemaker_dataframe()
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column].dtype) and frame[column].dtype != object:
            frame[column] = frame[column].astype(object)
    frame.columns = pd.Index(list(frame.columns), dtype=object)
    frame.to_pickle(path, compression='gzip' if str(path).endswith(('.gz', '.gzip')) else None)


@dataclasses.dataclass
class FitPlan:
    """Everything the job writes, derived from the inputs (and checked) in one place."""

    settings: dict
    elements: list[str]
    train: FrameSet
    test: FrameSet | None


def plan_fit(train_node, test_node=None, settings: dict | None = None, initial_potential=None) -> FitPlan:
    """Validate settings against the data; split off a seeded test set when none is given. Raises FitSettingsError."""
    s = fit_settings.validate_settings(settings)
    frames = train_node.get_frameset()
    elements = fit_settings.fit_elements(s, frames.elements)
    test = None
    if test_node is not None:
        test = test_node.get_frameset()
        extra = sorted(set(test.elements) - set(elements))
        if extra:
            raise fit_settings.FitSettingsError(
                f'the test set contains {extra}, which the training set lacks; the potential cannot predict them. '
                'Use a test set with the elements of the training set.'
            )
    elif s['test_fraction'] is not None:
        frames, test = split_frameset(frames, s['test_fraction'], s['seed'])
    fit_settings.check_reference_energy(s, elements)
    fit_settings.check_reference_level(s, train_node.level_of_theory)
    fitted_functions = None
    if initial_potential is not None:
        fit_settings.check_initial_potential(elements, initial_potential.elements)
        if s['upfit'] == 'continue':  # pacemaker fits the initial potential's own basis, not the settings' size
            fitted_functions = initial_potential.base.attributes.get('functions_per_element')
    fit_settings.check_dataset_size(s, atom_counts(frames), fitted_functions)
    if initial_potential is not None:
        if s['reference_energy'] == 'auto' and initial_potential.reference_energy:
            # keep the energy zero the initial coefficients were fitted to
            s['reference_energy'] = dict(initial_potential.reference_energy)
    return FitPlan(settings=s, elements=elements, train=frames, test=test)


#: extra of a pacemaker code: what `aiida-glassml setup` found when it checked the code's environment for tensorpot
TENSORPOT_EXTRA = 'glassml_tensorpot'


def tensorpot_problem(code: orm.AbstractCode) -> str | None:
    """Why ``code`` cannot fit with ``evaluator: tensorpot`` (one line naming the package, version and fix), or None.

    A local ``InstalledCode`` is checked with its own interpreter (cached until its site-packages change); a remote one
    by what ``aiida-glassml setup`` recorded in its extras (not checked when nothing was recorded)."""
    where = f'the environment of code {code.full_label}'
    computer = code.computer
    if isinstance(code, orm.InstalledCode) and computer is not None and computer.transport_type == 'core.local':
        path = code.filepath_executable.as_posix()
        python = tensorpot.interpreter_of(path)
        if python is None:
            return (f'cannot find the Python interpreter of code {code.full_label} ({path}) to check it for '
                    'tensorpot; use a pacemaker with a TensorFlow stack (`make install-tf`: pacemaker-tf@localhost), '
                    'or set evaluator: pyace.')
        return tensorpot.problem(tensorpot.probe_cached(python), where)
    recorded = code.base.extras.get(TENSORPOT_EXTRA, None)
    return tensorpot.problem(recorded, where) if recorded else None


def supports_tensorpot(code: orm.AbstractCode) -> bool:
    """Whether ``code`` is known to fit with tensorpot (a remote code only when setup recorded a working stack)."""
    if code.computer is not None and code.computer.transport_type != 'core.local':
        return bool(code.base.extras.get(TENSORPOT_EXTRA, None)) and tensorpot_problem(code) is None
    return tensorpot_problem(code) is None


def check_evaluator(code: orm.AbstractCode | None, settings: dict) -> None:
    """Raise FitSettingsError when validated ``settings`` ask for tensorpot and ``code`` cannot run it."""
    if code is None or settings['evaluator'] != 'tensorpot':
        return
    problem = tensorpot_problem(code)
    if problem:
        raise fit_settings.FitSettingsError(problem)


def validate_inputs(value, ctx=None) -> str | None:
    if 'train' not in value:  # exposed in a work chain that supplies the data itself
        return None
    settings = value['settings'].get_dict() if 'settings' in value else None
    try:
        plan = plan_fit(value['train'], value.get('test'), settings, value.get('initial_potential'))
        check_evaluator(value.get('code'), plan.settings)
    except (fit_settings.FitSettingsError, ValueError) as exc:
        return str(exc)
    return None


def validate_settings_port(value, ctx=None) -> str | None:
    try:
        fit_settings.validate_settings(value.get_dict())
    except fit_settings.FitSettingsError as exc:
        return str(exc)
    return None


class PacemakerCalculation(CalcJob):
    """Fit an ACE potential with pacemaker (+ ``pace_yaml2yace`` and ``pace_activeset``)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='The `pacemaker` code.')
        spec.input('yaml2yace_code', valid_type=orm.AbstractCode, help='The `pace_yaml2yace` code.')
        spec.input('activeset_code', valid_type=orm.AbstractCode, help='The `pace_activeset` code.')
        spec.input('train', valid_type=TrainingSetData, help='Training frames.')
        spec.input('test', valid_type=TrainingSetData, required=False,
                   help='Test frames; without it a seeded split of `train` (settings test_fraction, seed) is used.')
        spec.input('settings', valid_type=orm.Dict, required=False, validator=validate_settings_port,
                   help='Fit settings (aiida_glassml.fitting.settings.DEFAULT_SETTINGS; docs/fitting.md).')
        spec.input('initial_potential', valid_type=AcePotentialData, required=False,
                   help='Start from this potential: an up-fit on a grown dataset, or a restart from an interim one.')
        spec.inputs.validator = validate_inputs
        options = spec.inputs['metadata']['options']
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False
        options['parser_name'].default = 'glassml.pacemaker'
        options['input_filename'].default = INPUT_FILENAME
        options['output_filename'].default = STDOUT['pacemaker']

        spec.output('potential', valid_type=AcePotentialData,
                    help='The fitted potential with .yaml, .yace and active set .asi; metrics as attribute.')
        spec.output('metrics', valid_type=orm.Dict,
                    help='Energy (meV/atom) and force (meV/Å) MAE and RMSE on train and test, n_functions, '
                         'n_iterations.')  # fmt: skip
        spec.output('interim_potential', valid_type=AcePotentialData, required=False,
                    help='The last interim potential of an interrupted fit, to restart from.')
        spec.default_output_node = 'metrics'

        spec.exit_code(300, 'ERROR_NO_RETRIEVED_TEMPORARY_FOLDER', message='The temporary retrieved folder is missing.')
        spec.exit_code(301, 'ERROR_PACEMAKER_FAILED',
                       message='pacemaker failed before writing any potential: {message}')
        spec.exit_code(302, 'ERROR_INSUFFICIENT_ENVIRONMENTS',
                       message='pace_activeset: insufficient atomic environments for the number of functions; add '
                               'data or lower number_of_functions_per_element. {message}')  # fmt: skip
        spec.exit_code(303, 'ERROR_YACE_MISSING', message='pace_yaml2yace wrote no .yace: {message}')
        spec.exit_code(304, 'ERROR_ACTIVE_SET_MISSING', message='pace_activeset wrote no .asi: {message}')
        spec.exit_code(305, 'ERROR_INVALID_POTENTIAL', message='the fitted potential is not valid: {message}')
        spec.exit_code(306, 'ERROR_PREDICTIONS_MISSING',
                       message='pacemaker wrote no train predictions (train_pred.pckl.gzip), so no metrics.')
        spec.exit_code(400, 'ERROR_FIT_INTERRUPTED',
                       message='the fit stopped before the final potential; the interim potential is attached to '
                               'restart from.')  # fmt: skip
        spec.exit_code(401, 'ERROR_OUT_OF_WALLTIME',
                       message='the job ran out of walltime; the interim potential is attached to restart from.')

    def prepare_for_submission(self, folder):
        settings = self.inputs.settings.get_dict() if 'settings' in self.inputs else None
        plan = plan_fit(self.inputs.train, self.inputs.get('test'), settings, self.inputs.get('initial_potential'))

        write_portable_pickle(plan.train, folder.get_abs_path(input_yaml.TRAIN_FILENAME))
        if plan.test is not None:
            write_portable_pickle(plan.test, folder.get_abs_path(input_yaml.TEST_FILENAME))
        initial = None
        if 'initial_potential' in self.inputs:
            initial = input_yaml.INITIAL_POTENTIAL_FILENAME
            content = self.inputs.initial_potential.base.repository.get_object_content(AcePotentialData.YAML)
            # its coefficients were fitted as bare ACE; the old core repulsion would distort the up-fit's loss
            content = input_yaml.initial_potential_yaml(content, plan.settings)
            folder.create_file_from_filelike(io.BytesIO(content.encode('utf-8')), initial, mode='wb')
        text = input_yaml.render_input_yaml(
            plan.settings, plan.elements, test_filename=input_yaml.TEST_FILENAME if plan.test is not None else None,
            initial_potential=initial,
        )  # fmt: skip
        with folder.open(INPUT_FILENAME, 'w') as handle:
            handle.write(text)

        output = input_yaml.OUTPUT_POTENTIAL_FILENAME
        fit = CodeInfo()
        fit.code_uuid = self.inputs.code.uuid
        fit.cmdline_params = [INPUT_FILENAME]
        fit.stdout_name, fit.stderr_name = STDOUT['pacemaker'], STDERR['pacemaker']
        convert = CodeInfo()
        convert.code_uuid = self.inputs.yaml2yace_code.uuid
        convert.cmdline_params = [output, '-o', YACE_FILENAME]
        convert.stdout_name, convert.stderr_name = STDOUT['yaml2yace'], STDERR['yaml2yace']
        active = CodeInfo()
        active.code_uuid = self.inputs.activeset_code.uuid
        active.cmdline_params = activeset_cmdline(plan.settings['active_set'], FITTING_DATA_FILENAME, output)
        active.stdout_name, active.stderr_name = STDOUT['activeset'], STDERR['activeset']

        calcinfo = CalcInfo()
        calcinfo.codes_info = [fit, convert, active]
        calcinfo.codes_run_mode = CodeRunMode.SERIAL
        calcinfo.retrieve_list = [LOG_FILENAME, '*metrics.txt', INPUT_FILENAME, *STDOUT.values(), *STDERR.values(),
                                  INTERIM_PATTERN]  # fmt: skip
        calcinfo.retrieve_temporary_list = [output, YACE_FILENAME, ASI_FILENAME, TRAIN_PREDICTIONS, TEST_PREDICTIONS]
        return calcinfo

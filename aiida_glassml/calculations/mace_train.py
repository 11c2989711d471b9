"""``MaceTrainCalculation``: train a MACE model with ``mace_run_train`` (mace-torch), or fine-tune one from a
foundation model, then evaluate it on the train and test frames in the same environment.

Two registered codes run one after another: ``code`` is MACE's training CLI (``mace-train@localhost``, from
``.venv-mace``) and ``python_code`` the python of that environment (``mace-python@localhost``), which runs
:func:`aiida_glassml.fitting.mace.evaluate_main`. The settings and data are checked before anything is stored
(:mod:`aiida_glassml.fitting.mace`).
"""

from __future__ import annotations

import dataclasses
import io
import json

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo, CodeRunMode
from aiida.engine import CalcJob

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting import mace
from aiida_glassml.fitting.settings import FitSettingsError
from aiida_glassml.fitting.split import split_frameset

__all__ = ('MaceTrainCalculation', 'MacePlan', 'plan_mace_fit')


@dataclasses.dataclass
class MacePlan:
    """What the job writes, derived from the inputs (and checked) in one place."""

    settings: dict
    train: FrameSet
    test: FrameSet | None


def plan_mace_fit(train_node, test_node=None, settings: dict | None = None, foundation_model=None) -> MacePlan:
    """Validated settings and the train/test frames (a seeded split of ``train_node`` when no test set is given, as
    :func:`aiida_glassml.fitting.split.split_frameset` does for ACE). Raises FitSettingsError."""
    s = mace.validate_settings(settings)
    frames = train_node.get_frameset()
    test = test_node.get_frameset() if test_node is not None else None
    if test is None and s['test_fraction'] is not None:
        frames, test = split_frameset(frames, s['test_fraction'], s['seed'])
    foundation_elements = None
    if foundation_model is not None:
        if foundation_model.calculator != mace.CALCULATOR or not foundation_model.has_model_file:
            raise FitSettingsError(f'the foundation model must be an MlipPotentialData with a MACE model file '
                                   f'(calculator {mace.CALCULATOR}), got {foundation_model.calculator}.')  # fmt: skip
        foundation_elements = foundation_model.elements
    mace.check_data(s, frames.elements, frames.n_frames, test.elements if test is not None else (),
                    foundation_elements)  # fmt: skip
    return MacePlan(settings=s, train=frames, test=test)


def validate_inputs(value, ctx=None) -> str | None:
    if 'train' not in value:  # exposed in a work chain that supplies the data itself
        return None
    settings = value['settings'].get_dict() if 'settings' in value else None
    try:
        plan_mace_fit(value['train'], value.get('test'), settings, value.get('foundation_model'))
    except FitSettingsError as exc:
        return str(exc)
    return None


def validate_settings_port(value, ctx=None) -> str | None:
    try:
        mace.validate_settings(value.get_dict())
    except FitSettingsError as exc:
        return str(exc)
    return None


class MaceTrainCalculation(CalcJob):
    """Train (or fine-tune) a MACE model with ``mace_run_train``; evaluate it on the train and test frames."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help="MACE's training CLI `mace_run_train` (mace-train).")
        spec.input('python_code', valid_type=orm.AbstractCode,
                   help='The python of the same environment (mace-python): evaluates the model, and loads the output '
                        'potential later (its `python_code`).')  # fmt: skip
        spec.input('train', valid_type=TrainingSetData, help='Training frames (MACE validates on valid_fraction).')
        spec.input('test', valid_type=TrainingSetData, required=False,
                   help='Test frames; without it a seeded split of `train` (settings test_fraction, seed).')
        spec.input('settings', valid_type=orm.Dict, required=False, validator=validate_settings_port,
                   help='MACE settings (aiida_glassml.fitting.mace.DEFAULT_SETTINGS; docs/mlip.md).')
        spec.input('foundation_model', valid_type=MlipPotentialData, required=False,
                   help='Fine-tune: start from this MACE model (all weights trained on the new data).')
        spec.input('parent_folder', valid_type=orm.RemoteData, required=False,
                   help='Resume a stopped training: the remote folder whose `checkpoints/` MACE continues from '
                        '(`--restart_latest`).')  # fmt: skip
        spec.inputs.validator = validate_inputs
        options = spec.inputs['metadata']['options']
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False
        options['parser_name'].default = 'glassml.mace_train'
        options['environment_variables'].default = {'OMP_NUM_THREADS': '1'}

        spec.output('potential', valid_type=MlipPotentialData,
                    help='The trained model (MACECalculator), loadable by `python_code`; metrics as attribute.')
        spec.output('metrics', valid_type=orm.Dict,
                    help='Energy (meV/atom) and force (meV/Å) MAE and RMSE on train and test, n_parameters, '
                         'n_iterations (epochs).')  # fmt: skip
        spec.default_output_node = 'metrics'

        spec.exit_code(300, 'ERROR_NO_RETRIEVED_TEMPORARY_FOLDER', message='The temporary retrieved folder is missing.')
        spec.exit_code(310, 'ERROR_TRAINING_FAILED', message='mace_run_train wrote no model: {message}')
        spec.exit_code(311, 'ERROR_EVALUATION_FAILED', message='the trained model was not evaluated: {message}')
        spec.exit_code(312, 'ERROR_INVALID_POTENTIAL', message='the trained model is not a valid potential: {message}')
        spec.exit_code(401, 'ERROR_OUT_OF_WALLTIME',
                       message='the scheduler stopped the training at its walltime; its checkpoints are in the remote '
                               'folder (give it as `parent_folder` to resume).')  # fmt: skip

    def prepare_for_submission(self, folder):
        settings = self.inputs.settings.get_dict() if 'settings' in self.inputs else None
        foundation = self.inputs.get('foundation_model')
        plan = plan_mace_fit(self.inputs.train, self.inputs.get('test'), settings, foundation)
        mace.write_frames(plan.train, folder.get_abs_path(mace.FILES['train']))
        if plan.test is not None:
            mace.write_frames(plan.test, folder.get_abs_path(mace.FILES['test']))
        if foundation is not None:
            content = foundation.base.repository.get_object_content(foundation.model_filename, mode='rb')
            folder.create_file_from_filelike(io.BytesIO(content), mace.FILES['foundation'], mode='wb')
        folder.create_file_from_filelike(io.StringIO(json.dumps(plan.settings, indent=1)), 'settings.json', 'w')
        folder.create_file_from_filelike(io.StringIO(mace.evaluate_script()), mace.FILES['evaluate_script'], 'w')

        train = CodeInfo()
        train.code_uuid = self.inputs.code.uuid
        parent = self.inputs.get('parent_folder')
        train.cmdline_params = mace.train_cmdline(plan.settings, fine_tune=foundation is not None,
                                                  has_test=plan.test is not None, restart=parent is not None)  # fmt: skip
        train.stdout_name, train.stderr_name = mace.FILES['train_stdout'], mace.FILES['train_stderr']
        evaluate = CodeInfo()
        evaluate.code_uuid = self.inputs.python_code.uuid
        evaluate.cmdline_params = [mace.FILES['evaluate_script']]
        evaluate.stdout_name = evaluate.stderr_name = mace.FILES['evaluate_stdout']
        calcinfo = CalcInfo()
        calcinfo.codes_info = [train, evaluate]
        calcinfo.codes_run_mode = CodeRunMode.SERIAL
        logs = [mace.FILES[k] for k in ('train_stdout', 'train_stderr', 'evaluate_stdout', 'evaluation')]
        calcinfo.retrieve_list = [*logs, 'settings.json', 'logs/*.log', 'results/*']
        calcinfo.retrieve_temporary_list = [mace.FILES['model'], mace.FILES['predictions']]
        if parent is not None:
            calcinfo.remote_copy_list = [(parent.computer.uuid, f'{parent.get_remote_path()}/{mace.CHECKPOINTS}',
                                          mace.CHECKPOINTS)]  # fmt: skip
        return calcinfo

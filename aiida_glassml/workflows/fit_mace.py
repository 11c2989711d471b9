"""``FitMaceWorkChain``: train a MACE model with ``mace_run_train`` (mace-torch), or fine-tune one from a foundation
model, on a :class:`~aiida_glassml.data.training_set.TrainingSetData`.

The test set is given or split off the dataset by the same seeded calcfunction as
:class:`~aiida_glassml.workflows.fit_ace.FitAceWorkChain` (settings ``test_fraction`` and ``seed``), and the metrics
have the same keys and units, so an ACE and a MACE fit of one dataset compare directly.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from aiida_glassml.calculations.mace_train import MaceTrainCalculation, plan_mace_fit
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting import mace
from aiida_glassml.fitting.settings import FitSettingsError
from aiida_glassml.protocols import ProtocolMixin
from aiida_glassml.workflows.fit_ace import TrainTestSplitMixin

__all__ = ('FitMaceWorkChain',)

#: labels ``aiida-glassml setup`` registers for the MACE environment (.venv-mace)
TRAIN_CODE_LABEL = 'mace-train'
PYTHON_CODE_LABEL = 'mace-python'


def validate_inputs(value, ctx=None) -> str | None:
    if 'dataset' not in value:
        return None
    inputs = value.get('mace', {})
    settings = inputs['settings'].get_dict() if 'settings' in inputs else None
    try:
        plan_mace_fit(value['dataset'], value.get('test_set'), settings, value.get('foundation_model'))
    except FitSettingsError as exc:
        return str(exc)
    return None


class FitMaceWorkChain(TrainTestSplitMixin, ProtocolMixin, BaseRestartWorkChain):
    """Train or fine-tune a MACE model; the same train/test split and metrics as FitAceWorkChain."""

    _process_class = MaceTrainCalculation
    _protocol_file = 'fit_mace'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(MaceTrainCalculation, namespace='mace',
                           exclude=('train', 'test', 'foundation_model', 'parent_folder'))
        spec.input('dataset', valid_type=TrainingSetData, help='All labelled frames (the training set).')
        spec.input('test_set', valid_type=TrainingSetData, required=False,
                   help='Separate test frames; without it `settings.test_fraction` of the dataset is split off.')
        spec.input('foundation_model', valid_type=MlipPotentialData, required=False,
                   help='Fine-tune from this MACE model (e.g. MACE-MP-0 as in the NaPSO study\'s FT-MP0 route, or a '
                        'model trained here).')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.prepare_data,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.expose_outputs(MaceTrainCalculation)
        spec.output('train_set', valid_type=TrainingSetData, required=False, help='The frames the model was trained on.')
        spec.output('test_set', valid_type=TrainingSetData, required=False, help='The held-out frames.')
        spec.exit_code(300, 'ERROR_UNRECOVERABLE_FAILURE', message='the training failed in a way a restart cannot fix.')

    @classmethod
    def get_builder_from_protocol(
        cls, code: orm.AbstractCode, dataset: TrainingSetData, protocol: str | None = None, overrides: dict | None = None,
        test_set: TrainingSetData | None = None, foundation_model: MlipPotentialData | None = None,
        python_code: orm.AbstractCode | None = None,
    ):  # fmt: skip
        """A builder for ``protocol`` (fast, balanced, stringent). ``code`` is ``mace_run_train`` (mace-train);
        ``python_code`` defaults to ``mace-python`` on the same computer (both registered by ``aiida-glassml setup``
        from .venv-mace). Raises ProtocolError/FitSettingsError on bad input, before anything is stored."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        settings = inputs['mace']['settings']
        plan_mace_fit(dataset, test_set, settings, foundation_model)
        computer = code.computer.label if code.computer is not None else None
        python_code = python_code or _load_code(PYTHON_CODE_LABEL, computer)

        builder = cls.get_builder()
        builder.dataset = dataset
        if test_set is not None:
            builder.test_set = test_set
        if foundation_model is not None:
            builder.foundation_model = foundation_model
        builder.mace.code = code
        builder.mace.python_code = python_code
        builder.mace.settings = orm.Dict(settings)
        builder.mace.metadata = inputs['mace']['metadata']
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.clean_workdir = orm.Bool(inputs['clean_workdir'])
        return builder

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(MaceTrainCalculation, 'mace'))
        if 'foundation_model' in self.inputs:
            self.ctx.inputs.foundation_model = self.inputs.foundation_model
            self.report(f'fine-tuning from MlipPotentialData<{self.inputs.foundation_model.pk}>')

    def prepare_data(self):
        """Use the given test set, or split one off with the recorded, seeded calcfunction of FitAceWorkChain."""
        settings = mace.validate_settings(self.ctx.inputs.settings.get_dict() if 'settings' in self.ctx.inputs
                                          else None)  # fmt: skip
        self.split_dataset(settings)

    def results(self):
        result = super().results()
        if result is not None and result.status:
            return result
        self.attach_train_test()
        metrics = self.ctx.children[-1].outputs.metrics.get_dict()
        self.report(
            f'trained {metrics["n_parameters"]} parameters for {metrics["n_iterations"]} epochs: energy MAE train '
            f'{metrics["train_energy_mae"]:.1f} / test {metrics.get("test_energy_mae", float("nan")):.1f} meV/atom, '
            f'force MAE train {metrics["train_force_mae"]:.0f} / test {metrics.get("test_force_mae", float("nan")):.0f} '
            'meV/Å'
        )
        return result

    @process_handler(priority=600, exit_codes=[
        MaceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,  # pylint: disable=no-member
        MaceTrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_out_of_walltime(self, calculation):
        """Resume from the stopped job's latest checkpoint (its remote folder); the settings stay as they were."""
        self.ctx.inputs.parent_folder = calculation.outputs.remote_folder
        self.report(f'{calculation.process_label}<{calculation.pk}> stopped at its walltime; resuming from the '
                    f'checkpoints in RemoteData<{calculation.outputs.remote_folder.pk}>')  # fmt: skip
        return ProcessHandlerReport(True)

    @process_handler(priority=500, exit_codes=[
        MaceTrainCalculation.exit_codes.ERROR_TRAINING_FAILED,  # pylint: disable=no-member
        MaceTrainCalculation.exit_codes.ERROR_EVALUATION_FAILED,  # pylint: disable=no-member
        MaceTrainCalculation.exit_codes.ERROR_INVALID_POTENTIAL,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_unrecoverable(self, calculation):
        """3xx: the same inputs would fail again, so stop instead of retrying."""
        self.report(f'{calculation.process_label}<{calculation.pk}> failed with {calculation.exit_status}: '
                    f'{calculation.exit_message}')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_UNRECOVERABLE_FAILURE)


def _load_code(label: str, computer: str | None) -> orm.AbstractCode:
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        return orm.load_code(f'{label}@{computer}' if computer else label)
    except (NotExistent, MultipleObjectsError) as exc:
        raise FitSettingsError(f'no code `{label}` on computer `{computer}`: run `make install-mace` and '
                               '`aiida-glassml setup`, or pass python_code=.') from exc

"""``FitAceWorkChain``: fit an ACE potential with pacemaker, restart from the interim potential when the fit is
interrupted, and make parity plots of the result.

An up-fit (``initial_potential``) continues from an earlier potential when the dataset has grown. The test set is
either given or split off the dataset by the ``split_training_set`` calcfunction (seeded, so reproducible, and
recorded in the provenance).
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import (
    BaseRestartWorkChain, ProcessHandlerReport, ToContext, calcfunction, if_, process_handler, while_,
)  # fmt: skip

from aiida_glassml.calculations.evaluate_potential import EvaluatePotentialCalculation, default_python_code
from aiida_glassml.calculations.pacemaker import PacemakerCalculation, check_evaluator, plan_fit, supports_tensorpot
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting import settings as fit_settings
from aiida_glassml.fitting.split import split_frameset
from aiida_glassml.protocols import ProtocolMixin
from aiida_glassml.workflows.submit_once import SubmitOnceMixin


@calcfunction
def split_training_set(dataset: TrainingSetData, test_fraction: orm.Float, seed: orm.Int):
    """Seeded train/test split of a training set (``aiida_glassml.fitting.split``)."""
    train, test = split_frameset(dataset.get_frameset(), test_fraction.value, seed.value)
    level = dataset.level_of_theory
    return {'train': TrainingSetData(train, level_of_theory=level), 'test': TrainingSetData(test, level_of_theory=level)}


def validate_inputs(value, ctx=None) -> str | None:
    if 'dataset' not in value:
        return None
    pacemaker = value.get('pacemaker', {})
    settings = pacemaker['settings'].get_dict() if 'settings' in pacemaker else None
    try:
        plan = plan_fit(value['dataset'], value.get('test_set'), settings, value.get('initial_potential'))
        check_evaluator(pacemaker.get('code'), plan.settings)
        if value.get('make_plots', orm.Bool(True)).value and 'python_code' not in value:
            parity_code(pacemaker.get('code'))
    except (fit_settings.FitSettingsError, ValueError) as exc:
        return str(exc)
    return None


def evaluation_code(fit_inputs) -> orm.AbstractCode:
    """The python code that evaluates the potentials of a fit with these (FitAceWorkChain) inputs: its
    ``python_code``, else :func:`parity_code` of its pacemaker code."""
    if fit_inputs.get('python_code') is not None:
        return fit_inputs['python_code']
    return parity_code(fit_inputs['pacemaker']['code'])


def parity_code(pacemaker_code: orm.AbstractCode | None) -> orm.AbstractCode:
    """The python code of the parity-plot job when none is given: ``glassml-python`` on the pacemaker code's computer
    (else the only one, else the one on localhost)."""
    computer = pacemaker_code.computer.label if pacemaker_code is not None and pacemaker_code.computer else None
    return default_python_code(computer)


class TrainTestSplitMixin:
    """The train/test data of a fit work chain (FitAceWorkChain, FitMaceWorkChain): the given ``test_set``, or a split
    off ``dataset`` by the recorded, seeded :func:`split_training_set`, so both fits hold out the same frames."""

    def split_dataset(self, settings: dict) -> None:
        """``ctx.inputs.train``/``test`` (the job's inputs) and ``ctx.train``/``test`` from ``settings`` (validated:
        ``test_fraction`` and ``seed``)."""
        if 'test_set' in self.inputs:
            self.ctx.inputs.train, self.ctx.inputs.test = self.inputs.dataset, self.inputs.test_set
        elif settings['test_fraction'] is not None:
            split = split_training_set(self.inputs.dataset, orm.Float(settings['test_fraction']), orm.Int(settings['seed']))
            self.ctx.inputs.train, self.ctx.inputs.test = split['train'], split['test']
            self.report(f'split {self.inputs.dataset.n_frames} frames into {split["train"].n_frames} train and '
                        f'{split["test"].n_frames} test (fraction {settings["test_fraction"]}, seed {settings["seed"]})')
        else:
            self.ctx.inputs.train = self.inputs.dataset
        self.ctx.train, self.ctx.test = self.ctx.inputs.train, self.ctx.inputs.get('test')

    def attach_train_test(self) -> None:
        self.out('train_set', self.ctx.train)
        if self.ctx.test is not None:
            self.out('test_set', self.ctx.test)


class FitAceWorkChain(SubmitOnceMixin, TrainTestSplitMixin, ProtocolMixin, BaseRestartWorkChain):
    """Fit an ACE potential with pacemaker; restart from the interim potential on interruption; parity plots."""

    _process_class = PacemakerCalculation
    _protocol_file = 'fit_ace'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(PacemakerCalculation, namespace='pacemaker', exclude=('train', 'test', 'initial_potential'))
        spec.input('dataset', valid_type=TrainingSetData, help='All labelled frames (the training set).')
        spec.input('test_set', valid_type=TrainingSetData, required=False,
                   help='Separate test frames; without it `settings.test_fraction` of the dataset is split off.')
        spec.input('initial_potential', valid_type=AcePotentialData, required=False,
                   help='Up-fit: continue from this earlier potential (same elements) on a grown dataset.')
        spec.input('make_plots', valid_type=orm.Bool, default=lambda: orm.Bool(True),
                   help='Make energy and force parity plots of the fitted potential.')
        spec.input('python_code', valid_type=orm.AbstractCode, required=False,
                   help='The venv python of the parity-plot job (EvaluatePotentialCalculation); default: '
                        '`glassml-python` on the pacemaker code\'s computer.')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.prepare_data,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
            if_(cls.should_make_plots)(cls.make_parity_plots, cls.attach_parity_plots),
        )
        spec.expose_outputs(PacemakerCalculation)
        spec.output('train_set', valid_type=TrainingSetData, required=False, help='The frames the potential was fitted on.')
        spec.output('test_set', valid_type=TrainingSetData, required=False, help='The held-out frames.')
        spec.output('energy_parity', valid_type=orm.SinglefileData, required=False, help='Energy parity plot (PNG).')
        spec.output('force_parity', valid_type=orm.SinglefileData, required=False,
                    help='Force-component parity plot (PNG).')
        spec.exit_code(300, 'ERROR_UNRECOVERABLE_FAILURE', message='the fit failed in a way a restart cannot fix.')

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides: dict | None = None,
                            code: orm.AbstractCode | None = None) -> dict:  # fmt: skip
        """The protocol's inputs. A protocol's ``with_tensorpot`` settings (``balanced``: the TensorFlow evaluator
        with L-BFGS-B) apply when ``code`` can run tensorpot (:func:`supports_tensorpot`), unless the overrides set
        those keys themselves; without ``code`` they are dropped."""
        import pathlib

        import yaml

        inputs = super().get_protocol_inputs(protocol, overrides)
        with_tensorpot = inputs.pop('with_tensorpot', None) or {}
        if with_tensorpot and code is not None and supports_tensorpot(code):
            if isinstance(overrides, pathlib.Path):
                overrides = yaml.safe_load(overrides.read_text())
            wanted = ((overrides or {}).get('pacemaker') or {}).get('settings') or {}
            for key, value in with_tensorpot.items():
                if key not in wanted:
                    inputs['pacemaker']['settings'][key] = value
        return inputs

    @classmethod
    def get_builder_from_protocol(
        cls, code: orm.AbstractCode, dataset: TrainingSetData, protocol: str | None = None, overrides: dict | None = None,
        test_set: TrainingSetData | None = None, initial_potential: AcePotentialData | None = None,
        yaml2yace_code: orm.AbstractCode | None = None, activeset_code: orm.AbstractCode | None = None,
    ):  # fmt: skip
        """A builder for ``protocol`` (fast, balanced, stringent). The conversion and active-set codes default to
        those labelled ``pace_yaml2yace`` and ``pace_activeset`` on the pacemaker code's computer (registered by
        ``aiida-glassml setup``). Raises ProtocolError/FitSettingsError on bad input, before anything is stored."""
        inputs = cls.get_protocol_inputs(protocol, overrides, code=code)
        settings = inputs['pacemaker']['settings']
        plan = plan_fit(dataset, test_set, settings, initial_potential)
        check_evaluator(code, plan.settings)

        computer = code.computer.label if code.computer is not None else None
        yaml2yace_code = yaml2yace_code or _load_code('pace_yaml2yace', computer)
        activeset_code = activeset_code or _load_code('pace_activeset', computer)

        builder = cls.get_builder()
        builder.dataset = dataset
        if test_set is not None:
            builder.test_set = test_set
        if initial_potential is not None:
            builder.initial_potential = initial_potential
        builder.pacemaker.code = code
        builder.pacemaker.yaml2yace_code = yaml2yace_code
        builder.pacemaker.activeset_code = activeset_code
        builder.pacemaker.settings = orm.Dict(settings)
        builder.pacemaker.metadata = inputs['pacemaker']['metadata']
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.clean_workdir = orm.Bool(inputs['clean_workdir'])
        builder.make_plots = orm.Bool(inputs['make_plots'])
        return builder

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(PacemakerCalculation, 'pacemaker'))
        if 'initial_potential' in self.inputs:
            self.ctx.inputs.initial_potential = self.inputs.initial_potential
            self.report(f'up-fit from AcePotentialData<{self.inputs.initial_potential.pk}>')

    def prepare_data(self):
        """Use the given test set, or split one off with a recorded, seeded calcfunction."""
        settings = fit_settings.validate_settings(self.ctx.inputs.settings.get_dict() if 'settings' in self.ctx.inputs
                                                  else None)  # fmt: skip
        self.report(f'pacemaker evaluator {settings["evaluator"]}, optimizer {settings["optimizer"]} '
                    f'(code {self.ctx.inputs.code.full_label})')
        self.split_dataset(settings)

    def results(self):
        result = super().results()
        if result is not None and result.status:  # failed; nothing more to attach
            return result
        self.attach_train_test()
        metrics = self.ctx.children[-1].outputs.metrics.get_dict()
        self.report(
            f'fitted {metrics["n_functions"]} functions in {metrics["n_iterations"]} iterations: energy MAE train '
            f'{metrics["train_energy_mae"]:.1f} / test {metrics.get("test_energy_mae", float("nan")):.1f} meV/atom, '
            f'force MAE train {metrics["train_force_mae"]:.0f} / test {metrics.get("test_force_mae", float("nan")):.0f} '
            'meV/Å'
        )
        return result

    def should_make_plots(self):
        return self.inputs.make_plots.value and 'potential' in self.outputs

    def make_parity_plots(self):
        """Parity plots of train and test in a job (pyace predictions, with the test metrics), not in this worker."""
        code = self.inputs.python_code if 'python_code' in self.inputs else parity_code(self.ctx.inputs.code)
        builder = EvaluatePotentialCalculation.get_builder()
        builder.code = code
        builder.potential = self.outputs['potential']
        builder.parity = orm.Bool(True)
        if self.ctx.test is not None:
            builder.dataset, builder.training_set = self.ctx.test, self.ctx.train
        else:
            builder.dataset = self.ctx.train
        builder.metadata.call_link_label = 'parity_plots'  # reused, not made again, after a daemon crash
        node = self.submit(builder)
        self.report(f'making parity plots (pyace on train and test): EvaluatePotentialCalculation<{node.pk}>')
        return ToContext(parity=node)

    def attach_parity_plots(self):
        """The plots are extras of a good fit: a failed plot job is reported, and the fit keeps its outputs."""
        node = self.ctx.parity
        if not node.is_finished_ok:
            self.report(f'the parity plots failed: EvaluatePotentialCalculation<{node.pk}> exit {node.exit_status}: '
                        f'{node.exit_message}')  # fmt: skip
            return
        self.out('energy_parity', node.outputs.energy_parity)
        self.out('force_parity', node.outputs.force_parity)

    @process_handler(priority=600, exit_codes=[
        PacemakerCalculation.exit_codes.ERROR_FIT_INTERRUPTED,  # pylint: disable=no-member
        PacemakerCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,  # pylint: disable=no-member
        PacemakerCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_interrupted_fit(self, calculation):
        """Restart from the last interim potential: pacemaker continues the ladder from that basis."""
        if 'interim_potential' not in calculation.outputs:
            self.report(f'{calculation.process_label}<{calculation.pk}> stopped without an interim potential; '
                        'cannot restart')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_UNRECOVERABLE_FAILURE)
        interim = calculation.outputs.interim_potential
        self.ctx.inputs.initial_potential = interim
        settings = self.ctx.inputs.settings.get_dict() if 'settings' in self.ctx.inputs else {}
        ladder = fit_settings.validate_settings(settings)['ladder_step'] is not None
        # an interrupted ladder fit grows on from the interim basis; a plain fit continues that basis
        self.ctx.inputs.settings = orm.Dict({**settings, 'upfit': 'extend' if ladder else 'continue'})
        self.report(f'{calculation.process_label}<{calculation.pk}> stopped early (exit {calculation.exit_status}); '
                    f'restarting from interim AcePotentialData<{interim.pk}>')
        return ProcessHandlerReport(True)

    @process_handler(priority=500, exit_codes=[
        PacemakerCalculation.exit_codes.ERROR_PACEMAKER_FAILED,  # pylint: disable=no-member
        PacemakerCalculation.exit_codes.ERROR_INSUFFICIENT_ENVIRONMENTS,  # pylint: disable=no-member
        PacemakerCalculation.exit_codes.ERROR_YACE_MISSING,  # pylint: disable=no-member
        PacemakerCalculation.exit_codes.ERROR_ACTIVE_SET_MISSING,  # pylint: disable=no-member
        PacemakerCalculation.exit_codes.ERROR_INVALID_POTENTIAL,  # pylint: disable=no-member
        PacemakerCalculation.exit_codes.ERROR_PREDICTIONS_MISSING,  # pylint: disable=no-member
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
        raise fit_settings.FitSettingsError(
            f'no code `{label}` on computer `{computer}`: register it with `aiida-glassml setup` or pass it explicitly.'
        ) from exc

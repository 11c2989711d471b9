"""``GlassAnalysisWorkChain`` (entry point ``glassml.analysis``): the standard analysis of a glass and/or of MD
trajectories at a series of temperatures, with figures.

* ``structure`` (StructureData): g(r), total and Faber–Ziman partial S(Q), T(r)/G(r), bond angles and rings, with
  figures of each; with ``experimental`` (XyData) also R_χ against it.
* ``trajectories`` (TrajectoryData per label) with ``temperatures`` (Float per the same labels): MSD, D, σ_NE,
  van Hove, α2 and, if asked, fast/slow g(r) and hops per trajectory; with two or more distinct temperatures an
  Arrhenius fit of D. Replicas at one temperature are analysed each on its own.
* ``training_set`` (TrainingSetData with magnetic moments or Bader charges): oxidation states per frame from
  moment bins, or from Bader-charge bins (``oxidation_parameters`` ``source: bader``). A trajectory whose MLIP
  predicted moments (CHGNet; array ``magmoms``) gets its oxidation states per frame from the same moment bins.

The heavy steps (structure, network, each trajectory) run in parallel as ``AnalysisCalculation`` jobs on the venv
python (``code``, default ``glassml-python@localhost``), so a daemon crash during one leaves nothing half-done: the
job runs on and the restarted daemon collects it (a crash inside the step that submits them does not launch them
twice: ``SubmitOnceMixin``). Light bookkeeping stays in calcfunctions: every figure is a
SinglefileData made from the stored data behind it, so provenance leads from each PNG back to the input structure or
trajectory; R_χ, the Arrhenius fit and the oxidation states are small sums. All inputs are checked by the spec
validator, before anything is stored.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import WorkChain, if_

from aiida_glassml.analysis import AnalysisInputError
from aiida_glassml.calculations.analysis import TASK_INPUT, TASK_OUTPUTS, AnalysisCalculation
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.protocols import ProtocolMixin
from aiida_glassml.workflows.submit_once import SubmitOnceMixin


def _validate_inputs(inputs, _):
    structure = inputs.get('structure')
    trajectories = inputs.get('trajectories', {})
    temperatures = inputs.get('temperatures', {})
    training_set = inputs.get('training_set')
    if structure is None and not trajectories and training_set is None:
        return (
            'give a `structure`, `trajectories` (with `temperatures`) and/or a `training_set`; there is nothing to '
            'analyse.'
        )
    try:
        if 'experimental' in inputs and structure is None:
            return '`experimental` (for R_chi) needs a `structure` to compare with; give one or drop `experimental`.'
        if structure is not None:
            from aiida_glassml.calcfunctions.analysis import validate_structure_extra_parameters
            from aiida_glassml.calcfunctions.analysis_structure import (
                r_chi_model_span,
                validate_r_chi_parameters,
                validate_structure_parameters,
            )

            filled = validate_structure_parameters(structure, _dict(inputs.get('structure_parameters')))
            validate_structure_extra_parameters(structure, _dict(inputs.get('network_parameters')))
            if 'experimental' in inputs:
                given = _dict(inputs.get('r_chi_parameters'))
                span = r_chi_model_span(structure, filled, given.get('quantity', 'S_neutron'))
                validate_r_chi_parameters(inputs['experimental'], given, span)
        if training_set is not None:
            from aiida_glassml.calcfunctions.analysis_structure import validate_oxidation_parameters

            validate_oxidation_parameters(training_set, _dict(inputs.get('oxidation_parameters')))
        if trajectories:
            from aiida_glassml.calcfunctions.analysis import validate_dynamics_parameters

            if set(trajectories) != set(temperatures):
                return (
                    '`temperatures` must have one Float (K) per trajectory label: trajectories '
                    f'{sorted(trajectories)}, temperatures {sorted(temperatures)}.'
                )
            from aiida_glassml.calcfunctions.analysis_structure import trajectory_oxidation_parameters

            parameters = _dict(inputs.get('dynamics_parameters'))
            for label, node in trajectories.items():
                validate_dynamics_parameters(node, {**parameters, 'temperature': float(temperatures[label].value)})
                trajectory_oxidation_parameters(node, _dict(inputs.get('oxidation_parameters')))
            if 'arrhenius_parameters' in inputs:  # replicas at one temperature need no fit
                values = sorted({float(t.value) for t in temperatures.values()})
                if len(values) < 2:
                    return (
                        f'an Arrhenius fit needs trajectories at two or more temperatures, got {values} K. Add '
                        'temperatures, or drop `arrhenius_parameters` to analyse a single trajectory.'
                    )
                extra = _dict(inputs.get('arrhenius_parameters'))
                unknown = sorted(set(extra) - {'species', 't_min'})
                if unknown:
                    return f'unknown arrhenius_parameters {unknown}; allowed are ["species", "t_min"].'
                if extra.get('t_min') is not None and sum(v >= extra['t_min'] for v in values) < 2:
                    return f't_min = {extra["t_min"]} K leaves fewer than two temperatures above it ({values} K).'
    except AnalysisInputError as exc:
        return str(exc)
    if (structure is not None or trajectories) and 'code' not in inputs:
        try:
            default_code()
        except ValueError as exc:
            return str(exc)
    return None


#: the python code the analysis jobs run on when no `code` is given
DEFAULT_CODE = 'glassml-python@localhost'


def default_code() -> orm.AbstractCode:
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        return orm.load_code(DEFAULT_CODE)
    except (NotExistent, MultipleObjectsError) as exc:
        raise ValueError(
            f'no `code` given and {DEFAULT_CODE} is not registered ({type(exc).__name__}); run `aiida-glassml setup`, '
            'or give `code` (the python of this venv as an InstalledCode).'
        ) from None


def _dict(node) -> dict:
    return {} if node is None else node.get_dict()


class GlassAnalysisWorkChain(SubmitOnceMixin, ProtocolMixin, WorkChain):
    """Structure and dynamics analysis of a glass, with figures (see the module docstring)."""

    _protocol_file = 'analysis'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, required=False, help='The glass to analyse.')
        spec.input('structure_parameters', valid_type=orm.Dict, required=False,
                   help='g(r)/S(Q) parameters (cutoffs, formers, anions, r_max, dr, q_max, lorch).')  # fmt: skip
        spec.input('network_parameters', valid_type=orm.Dict, required=False,
                   help='Bond-angle and ring parameters (triplets, formers, anions, cutoffs, max_ring_size, '
                        'ring_species).')  # fmt: skip
        spec.input_namespace('trajectories', valid_type=orm.TrajectoryData, dynamic=True, required=False,
                             help='MD trajectories (times in ps), one per label.')  # fmt: skip
        spec.input_namespace('temperatures', valid_type=orm.Float, dynamic=True, required=False,
                             help='Temperature (K) of each trajectory, under the same labels.')  # fmt: skip
        spec.input('dynamics_parameters', valid_type=orm.Dict, required=False,
                   help='Parameters of the dynamics analysis, shared by all temperatures (see '
                        '`validate_dynamics_parameters`).')  # fmt: skip
        spec.input('arrhenius_parameters', valid_type=orm.Dict, required=False,
                   help='Arrhenius options: species, t_min (K, fit only T >= t_min). Needs two or more distinct '
                        'temperatures; without it a temperature series is still fitted with the defaults.')  # fmt: skip
        spec.input('experimental', valid_type=orm.XyData, required=False,
                   help='Experimental curve (S(Q) against Q in 1/Å, or T(r)/G(r) against r in Å) for R_chi.')
        spec.input('r_chi_parameters', valid_type=orm.Dict, required=False,
                   help='R_chi options: quantity (S_neutron, S_xray, T_neutron, G_neutron, T_xray, G_xray), '
                        'x_range [lower, upper].')  # fmt: skip
        spec.input('training_set', valid_type=TrainingSetData, required=False,
                   help='DFT frames with per-atom magnetic moments or Bader charges, for oxidation states.')
        spec.input('oxidation_parameters', valid_type=orm.Dict, required=False,
                   help='Oxidation-state options: source (moments or bader), element, bins [[lower, upper, '
                        'state], ...] (|m| in μB, or the Bader charge in e).')
        spec.input('code', valid_type=orm.AbstractCode, required=False,
                   help=f'The venv python the analysis jobs run on (AnalysisCalculation); default {DEFAULT_CODE}.')
        spec.input('options', valid_type=orm.Dict, required=False,
                   help='`metadata.options` of the analysis jobs (resources, max_wallclock_seconds, ...).')
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            cls.run_jobs,
            cls.inspect_jobs,
            if_(cls.has_structure)(cls.analyse_structure, cls.analyse_network),
            if_(cls.has_trajectories)(cls.analyse_dynamics, if_(cls.has_temperature_series)(cls.fit_arrhenius)),
            if_(cls.has_training_set)(cls.assign_oxidation_states),
            cls.finalize,
        )
        spec.output_namespace('structure', dynamic=True, help='Structure results, arrays and figures.')
        spec.output_namespace('dynamics', dynamic=True, help='Per trajectory label: results, arrays and figures.')
        spec.output_namespace('arrhenius', dynamic=True, help='Arrhenius fit, its data and figure.')
        spec.output_namespace('oxidation', dynamic=True, help='Oxidation states per frame of the training set.')
        spec.exit_code(
            310, 'ERROR_ANALYSIS_JOB_FAILED',
            message='analysis job(s) failed, so no results for them: {details}',
        )  # fmt: skip
        spec.exit_code(
            320, 'ERROR_NO_ARRHENIUS_FIT',
            message='no species was diffusive at two or more temperatures, so no Arrhenius fit: {reason}',
        )  # fmt: skip
        spec.exit_code(
            321, 'ERROR_R_CHI_RANGE',
            message='R_chi cannot be computed on the model grid: {reason}',
        )  # fmt: skip

    @classmethod
    def get_builder_from_protocol(cls, structure=None, trajectories=None, temperatures=None, protocol=None,
                                  overrides=None, experimental=None, training_set=None, code=None,
                                  options: dict | None = None, **_):  # fmt: skip
        """A builder from a protocol of ``analysis.yaml``. ``trajectories``: {label: TrajectoryData};
        ``temperatures``: {label: K} for the same labels; ``experimental``: XyData for R_chi against ``structure``;
        ``training_set``: TrainingSetData with magnetic moments, for oxidation states; ``code``: the venv python
        of the analysis jobs (default ``glassml-python@localhost``), ``options`` their ``metadata.options``. Parts
        without their input are left out; the Arrhenius parameters only with two or more distinct temperatures."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        if code is not None:
            builder.code = code
        if options:
            builder.options = orm.Dict(dict(options))
        if experimental is not None:
            builder.experimental = experimental
        if training_set is not None:
            builder.training_set = training_set
        if structure is not None:
            builder.structure = structure
            builder.structure_parameters = orm.Dict(inputs['structure_parameters'])
            builder.network_parameters = orm.Dict(inputs['network_parameters'])
        if trajectories:
            builder.trajectories = dict(trajectories)
            builder.temperatures = {label: orm.Float(float(value)) for label, value in (temperatures or {}).items()}
            builder.dynamics_parameters = orm.Dict(inputs['dynamics_parameters'])
            if len({float(v) for v in (temperatures or {}).values()}) > 1:
                builder.arrhenius_parameters = orm.Dict(inputs['arrhenius_parameters'])
        return builder

    def setup(self):
        self.ctx.dynamics_results = {}

    def has_structure(self):
        return 'structure' in self.inputs

    def has_trajectories(self):
        return bool(self.inputs.get('trajectories'))

    def has_temperature_series(self):
        return len({float(t.value) for t in self.inputs.temperatures.values()}) > 1

    def has_training_set(self):
        return 'training_set' in self.inputs

    def _job(self, key: str, task: str, node, parameters: dict):
        """Submit one AnalysisCalculation; ``key`` is its context key and call link label."""
        metadata = {'call_link_label': key, 'options': _dict(self.inputs.get('options'))}
        inputs = {'code': self.inputs.code if 'code' in self.inputs else default_code(), 'task': orm.Str(task),
                  TASK_INPUT[task]: node, 'parameters': orm.Dict(parameters), 'metadata': metadata}  # fmt: skip
        self.to_context(**{key: self.submit(AnalysisCalculation, **inputs)})

    def run_jobs(self):
        """The heavy steps, all at once, each a job that survives a daemon crash."""
        from aiida_glassml.calcfunctions import analysis as cf
        from aiida_glassml.calcfunctions.analysis_structure import validate_structure_parameters

        self.ctx.jobs = []
        if self.has_structure():
            structure = self.inputs.structure
            self.report(f'analysing structure {structure.get_formula()}: g(r), S(Q), partial S(Q), T(r)/G(r)')
            self._job('structure_job', 'structure', structure,
                      validate_structure_parameters(structure, _dict(self.inputs.get('structure_parameters'))))
            parameters = cf.validate_structure_extra_parameters(structure, _dict(self.inputs.get('network_parameters')))
            self.report(f'bond angles {parameters["triplets"]} and rings of formers {parameters["formers"]}')
            self._job('network_job', 'network', structure, parameters)
            self.ctx.jobs += ['structure_job', 'network_job']
        if self.has_trajectories():
            shared = _dict(self.inputs.get('dynamics_parameters'))
            labels = sorted(self.inputs.trajectories, key=lambda k: float(self.inputs.temperatures[k].value))
            for number, label in enumerate(labels, 1):
                node = self.inputs.trajectories[label]
                temperature = float(self.inputs.temperatures[label].value)
                self.report(f'[{number}/{len(labels)}] dynamics of {label} ({temperature:g} K, {node.numsteps} frames)')
                # filled by the job on the trajectory it reads: no second pass over the positions here
                self._job(f'dynamics_job_{label}', 'dynamics', node, {**shared, 'temperature': temperature})
                self.ctx.jobs.append(f'dynamics_job_{label}')

    def inspect_jobs(self):
        failed = [key for key in self.ctx.jobs if not self.ctx[key].is_finished_ok]
        if failed:
            details = '; '.join(f'{key.removesuffix("_job").replace("_job_", " ")} ({self.ctx[key].process_label}'
                                f'<{self.ctx[key].pk}>) exit {self.ctx[key].exit_status}: {self.ctx[key].exit_message}'
                                for key in failed)  # fmt: skip
            self.report(f'analysis job(s) failed: {details}')
            return self.exit_codes.ERROR_ANALYSIS_JOB_FAILED.format(details=details)
        return None

    def _job_outputs(self, key: str, task: str) -> dict:
        node = self.ctx[key]
        return {name: node.outputs[name] for name in TASK_OUTPUTS[task] if name in node.outputs}

    def analyse_structure(self):
        from aiida_glassml.calcfunctions import analysis_structure as cfs

        outputs = self._job_outputs('structure_job', 'structure')
        outputs['rdf_figure'] = cfs.plot_rdf(outputs['rdf'])
        outputs['structure_factor_figure'] = cfs.plot_structure_factor(outputs['structure_factor'])
        outputs['partial_structure_factors_figure'] = cfs.plot_partial_structure_factors(
            outputs['partial_structure_factors'])
        outputs['real_space_figure'] = cfs.plot_real_space(outputs['real_space'])
        for key, node in outputs.items():
            self.out(f'structure.{key}', node)
        if 'experimental' in self.inputs:
            given = _dict(self.inputs.get('r_chi_parameters'))
            parameters = cfs.validate_r_chi_parameters(self.inputs.experimental, given)
            model = outputs[cfs.model_output_for(parameters['quantity'])]
            try:
                r_chi = cfs.run_r_chi(model, self.inputs.experimental, parameters)
            except AnalysisInputError as exc:
                return self.exit_codes.ERROR_R_CHI_RANGE.format(reason=str(exc))
            self.report(f'R_chi({parameters["quantity"]}) = {r_chi["r_chi"]["r_chi"]:.4f}')
            for key, node in r_chi.items():
                self.out(f'structure.{key}', node)

    def analyse_network(self):
        from aiida_glassml.calcfunctions import analysis as cf

        outputs = self._job_outputs('network_job', 'network')
        outputs['bond_angles_figure'] = cf.plot_bond_angles(outputs['bond_angles'])
        outputs['ring_sizes_figure'] = cf.plot_ring_sizes(outputs['rings'])
        for key, node in outputs.items():
            self.out(f'structure.{key}', node)

    def analyse_dynamics(self):
        from aiida_glassml.calcfunctions import analysis as cf
        from aiida_glassml.calcfunctions import analysis_structure as cfs

        labels = sorted(self.inputs.trajectories, key=lambda k: float(self.inputs.temperatures[k].value))
        for label in labels:
            outputs = self._job_outputs(f'dynamics_job_{label}', 'dynamics')
            outputs['msd_figure'] = cf.plot_msd(outputs['msd'])
            outputs['van_hove_figure'] = cf.plot_van_hove(outputs['van_hove'])
            outputs['alpha2_figure'] = cf.plot_alpha2(outputs['alpha2'])
            if 'mobility_rdf' in outputs:
                outputs['mobility_rdf_figure'] = cf.plot_mobility_rdf(outputs['mobility_rdf'])
            diffusion = outputs['results'].get_dict()['diffusion']
            summary = ', '.join(
                f'{s} D={v["D_cm2_s"]:.2e} cm²/s' if v['diffusive'] else f'{s} not diffusive'
                for s, v in diffusion.items()
            )
            self.report(f'{label}: {summary}')
            self.ctx.dynamics_results[label] = outputs['results']
            node = self.inputs.trajectories[label]
            oxidation = cfs.trajectory_oxidation_parameters(node, _dict(self.inputs.get('oxidation_parameters')))
            if oxidation is not None:  # moments an MLIP (CHGNet) predicted along the MD
                outputs.update(cfs.run_trajectory_oxidation_states(node, oxidation))
                totals = outputs['oxidation_states'].get_dict()['totals']
                self.report(f'{label}: oxidation states of {oxidation["element"]} from predicted moments: {totals}')
            for key, value in outputs.items():
                self.out(f'dynamics.{label}.{key}', value)

    def fit_arrhenius(self):
        from aiida_glassml.calcfunctions import analysis as cf

        given = _dict(self.inputs.get('arrhenius_parameters'))
        parameters = cf.validate_arrhenius_inputs(self.ctx.dynamics_results, given)
        self.report(f'Arrhenius fit over {len(self.ctx.dynamics_results)} temperatures')
        outputs = dict(cf.arrhenius_calcfunction(orm.Dict(parameters), **self.ctx.dynamics_results))
        summary = outputs['arrhenius'].get_dict()
        fitted = {k: v for k, v in summary.items() if v.get('fitted')}
        for key, node in outputs.items():
            self.out(f'arrhenius.{key}', node)
        if not fitted:
            reasons = '; '.join(f'{k}: {v["reason"]}' for k, v in summary.items()) or 'no diffusive species'
            return self.exit_codes.ERROR_NO_ARRHENIUS_FIT.format(reason=reasons)
        for name, fit in fitted.items():
            self.report(
                f'{name}: Ea = {fit["Ea_eV"]:.3f} ± {fit["Ea_err_eV"]:.3f} eV, D0 = {fit["D0_cm2_s"]:.2e} cm²/s'
            )
        self.out('arrhenius.figure', cf.plot_arrhenius(outputs['arrhenius_data']))

    def assign_oxidation_states(self):
        from aiida_glassml.calcfunctions.analysis_structure import run_oxidation_states

        outputs = run_oxidation_states(self.inputs.training_set, _dict(self.inputs.get('oxidation_parameters')))
        summary = outputs['oxidation_states'].get_dict()
        self.report(f'oxidation states of {summary["element"]} from {summary["source"]} over '
                    f'{len(summary["per_frame"])} frames: {summary["totals"]}')  # fmt: skip
        for key, node in outputs.items():
            self.out(f'oxidation.{key}', node)

    def finalize(self):
        self.report('glass analysis finished')

"""``GlassAnalysisWorkChain`` (entry point ``glassml.analysis``): the standard analysis of a glass and/or of MD
trajectories at a series of temperatures, with figures.

* ``structure`` (StructureData): g(r), S(Q) (structure engineer's calcfunctions), bond angles and rings, with
  figures of each.
* ``trajectories`` (TrajectoryData per label) with ``temperatures`` (Float per the same labels): MSD, D, σ_NE,
  van Hove, α2 and, if asked, fast/slow g(r) and hops per temperature; with two or more temperatures an
  Arrhenius fit of D.

Every figure is a SinglefileData made by a calcfunction from the stored data behind it, so provenance leads from
each PNG back to the input structure or trajectory. All inputs are checked by the spec validator, before anything
is stored.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import WorkChain, if_

from aiida_glassml.analysis import AnalysisInputError
from aiida_glassml.protocols import ProtocolMixin


def _validate_inputs(inputs, _):
    structure = inputs.get('structure')
    trajectories = inputs.get('trajectories', {})
    temperatures = inputs.get('temperatures', {})
    if structure is None and not trajectories:
        return 'give a `structure` and/or `trajectories` (with `temperatures`); there is nothing to analyse.'
    try:
        if structure is not None:
            from aiida_glassml.calcfunctions.analysis import validate_structure_extra_parameters
            from aiida_glassml.calcfunctions.analysis_structure import validate_structure_parameters

            validate_structure_parameters(structure, _dict(inputs.get('structure_parameters')))
            validate_structure_extra_parameters(structure, _dict(inputs.get('network_parameters')))
        if trajectories:
            from aiida_glassml.calcfunctions.analysis import validate_dynamics_parameters

            if set(trajectories) != set(temperatures):
                return (
                    '`temperatures` must have one Float (K) per trajectory label: trajectories '
                    f'{sorted(trajectories)}, temperatures {sorted(temperatures)}.'
                )
            parameters = _dict(inputs.get('dynamics_parameters'))
            for label, node in trajectories.items():
                validate_dynamics_parameters(node, {**parameters, 'temperature': float(temperatures[label].value)})
            if 'arrhenius_parameters' in inputs or len(trajectories) > 1:
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
    return None


def _dict(node) -> dict:
    return {} if node is None else node.get_dict()


class GlassAnalysisWorkChain(ProtocolMixin, WorkChain):
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
                   help='Arrhenius options: species, t_min (K, fit only T >= t_min).')  # fmt: skip
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.has_structure)(cls.analyse_structure, cls.analyse_network),
            if_(cls.has_trajectories)(cls.analyse_dynamics, if_(cls.has_temperature_series)(cls.fit_arrhenius)),
            cls.finalize,
        )
        spec.output_namespace('structure', dynamic=True, help='Structure results, arrays and figures.')
        spec.output_namespace('dynamics', dynamic=True, help='Per trajectory label: results, arrays and figures.')
        spec.output_namespace('arrhenius', dynamic=True, help='Arrhenius fit, its data and figure.')
        spec.exit_code(
            320, 'ERROR_NO_ARRHENIUS_FIT',
            message='no species was diffusive at two or more temperatures, so no Arrhenius fit: {reason}',
        )  # fmt: skip

    @classmethod
    def get_builder_from_protocol(cls, structure=None, trajectories=None, temperatures=None, protocol=None,
                                  overrides=None, **_):  # fmt: skip
        """A builder from a protocol of ``analysis.yaml``. ``trajectories``: {label: TrajectoryData};
        ``temperatures``: {label: K} for the same labels. Parts without their input (no structure, no trajectories)
        are left out; the Arrhenius parameters only with two or more temperatures."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
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

    def analyse_structure(self):
        from aiida_glassml.calcfunctions.analysis_structure import run_structure_analysis

        self.report(f'analysing structure {self.inputs.structure.get_formula()}: g(r), S(Q)')
        outputs = run_structure_analysis(self.inputs.structure, _dict(self.inputs.get('structure_parameters')))
        for key, node in outputs.items():
            self.out(f'structure.{key}', node)

    def analyse_network(self):
        from aiida_glassml.calcfunctions import analysis as cf

        given = _dict(self.inputs.get('network_parameters'))
        parameters = cf.validate_structure_extra_parameters(self.inputs.structure, given)
        self.report(f'bond angles {parameters["triplets"]} and rings of formers {parameters["formers"]}')
        outputs = dict(cf.analyse_network_calcfunction(self.inputs.structure, orm.Dict(parameters)))
        outputs['bond_angles_figure'] = cf.plot_bond_angles(outputs['bond_angles'])
        outputs['ring_sizes_figure'] = cf.plot_ring_sizes(outputs['rings'])
        for key, node in outputs.items():
            self.out(f'structure.{key}', node)

    def analyse_dynamics(self):
        from aiida_glassml.calcfunctions import analysis as cf

        shared = _dict(self.inputs.get('dynamics_parameters'))
        labels = sorted(self.inputs.trajectories, key=lambda k: float(self.inputs.temperatures[k].value))
        for number, label in enumerate(labels, 1):
            node = self.inputs.trajectories[label]
            temperature = float(self.inputs.temperatures[label].value)
            parameters = cf.validate_dynamics_parameters(node, {**shared, 'temperature': temperature})
            self.report(f'[{number}/{len(labels)}] dynamics of {label} ({temperature:g} K, {node.numsteps} frames)')
            outputs = dict(cf.analyse_dynamics_calcfunction(node, orm.Dict(parameters)))
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

    def finalize(self):
        self.report('glass analysis finished')

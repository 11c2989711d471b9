"""``MeltQuenchWorkChain``: melt-quench replicas of a structure with ASE (pyace or any ASE calculator) or LAMMPS,
then the glass structures, glass densities, the cooling curve, Tg with its uncertainty and a cooling-curve figure."""

from __future__ import annotations

import dataclasses

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain
from aiida.plugins import CalculationFactory, WorkflowFactory

from aiida_glassml.calcfunctions.melt_quench import TG_QUANTITIES, analyse_melt_quench, plot_cooling_curve
from aiida_glassml.data.mlip_potential import job_code
from aiida_glassml.md import tg as tg_fit
from aiida_glassml.md.protocol import GammaTracking, MDProtocol, MDProtocolError, Minimize, melt_quench
from aiida_glassml.protocols import ProtocolMixin
from aiida_glassml.workflows.submit_once import SubmitOnceMixin

AseMDCalculation = CalculationFactory('glassml.ase_md')
LammpsMDBaseWorkChain = WorkflowFactory('glassml.lammps_md_base')

ENGINES = ('ase', 'lammps')


class MeltQuenchWorkChain(SubmitOnceMixin, ProtocolMixin, WorkChain):
    """Run ``len(seeds)`` melt-quench replicas (one seed each) of ``structure`` following ``protocol`` in the chosen
    ``engine``, and analyse them together. Protocols: ``melt_quench.yaml`` (``balanced`` is the NaFePO4 study)."""

    _protocol_file = 'melt_quench'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='Starting structure (e.g. a random packing).')
        spec.input('engine', valid_type=orm.Str, default=lambda: orm.Str('ase'),
                   help=f'MD engine, one of {ENGINES}; its inputs go in the namespace of the same name.')
        spec.input('protocol', valid_type=orm.Dict,
                   help='MDProtocol.to_dict() of one replica; each replica replaces its `seed`.')
        spec.input('seeds', valid_type=orm.List, help='One velocity seed per replica (1..899999999).')
        spec.input('analysis', valid_type=orm.Dict,
                   default=lambda: orm.Dict({'quantity': 'volume', 'bin_width': 50.0}),
                   help=f'Tg fit: `quantity` one of {TG_QUANTITIES}, `bin_width` in K of the cooling-curve bins.')
        spec.expose_inputs(AseMDCalculation, namespace='ase', exclude=('structure', 'protocol'),
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'AseMDCalculation inputs (engine `ase`).'})  # fmt: skip
        spec.expose_inputs(LammpsMDBaseWorkChain, namespace='lammps', exclude=('md.structure', 'md.protocol'),
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'LammpsMDBaseWorkChain inputs (engine `lammps`).'})  # fmt: skip
        spec.inputs.validator = validate_inputs

        spec.outline(
            cls.setup,
            cls.run_replicas,
            cls.inspect_replicas,
            cls.analyse,
            cls.results,
        )
        spec.output_namespace('structures', valid_type=orm.StructureData, dynamic=True,
                              help='Glass structure of each replica (replica_0, replica_1, ...).')
        spec.output_namespace('thermo', valid_type=orm.ArrayData, dynamic=True, help='Thermo of each replica.')
        spec.output('densities', valid_type=orm.Dict, help='Glass density per replica (mean over the final hold), '
                    'their mean and standard deviation, g/cm³.')  # fmt: skip
        spec.output('cooling_curve', valid_type=orm.ArrayData,
                    help='Volume, potential energy, density and temperature vs ramp target temperature, per replica '
                         '(rows) and mean.')  # fmt: skip
        spec.output('tg', valid_type=orm.Dict, help='Tg (K) from the two-line fit, standard error, profile interval, '
                    'per-replica values.')  # fmt: skip
        spec.output('cooling_curve_figure', valid_type=orm.SinglefileData, help='PNG of the cooling curve and fit.')

        spec.exit_code(300, 'ERROR_ALL_REPLICAS_FAILED', message='no replica finished: {details}')
        spec.exit_code(320, 'ERROR_TG_FIT', message='the cooling curve could not give a Tg: {error}')
        spec.exit_code(350, 'ERROR_GAMMA_HALT',
                       message='replica(s) {labels} stopped on the ACE extrapolation grade; the potential needs more '
                               'training data for this melt-quench (outputs of finished replicas are attached).')
        spec.exit_code(401, 'ERROR_SOME_REPLICAS_FAILED',
                       message='replica(s) {labels} failed; the outputs come from the others.')

    # -- protocol ----------------------------------------------------------------------------------------------------
    @classmethod
    def get_builder_from_protocol(cls, code, structure, potential=None, engine: str = 'ase', protocol=None,
                                  overrides=None, calculator: dict | None = None, options: dict | None = None,
                                  settings: dict | None = None, **_):  # fmt: skip
        """A builder for ``engine`` from a protocol of ``melt_quench.yaml``.

        ``code``: the venv python (``glassml-python``) for ``ase``, ``lmp`` for ``lammps``. ``potential``: an
        AcePotentialData (gamma tracking when it has an active set) or, for LAMMPS, a ClassicalPotentialData;
        ``calculator`` (ase only, instead of ``potential``): ``{'name': 'module:Class', 'kwargs': {...}}``.
        """
        if engine not in ENGINES:
            raise ValueError(f'unknown engine {engine!r}; use one of {ENGINES}.')
        inputs = cls.get_protocol_inputs(protocol, overrides)
        md_protocol = melt_quench(**inputs['melt_quench'], **inputs['md'], seed=inputs['seed'])
        if md_protocol.stages and isinstance(md_protocol.stages[0], Minimize):
            md_protocol.stages[0] = Minimize(**inputs['minimize'])
        if getattr(potential, 'has_active_set', False) and inputs.get('gamma'):
            md_protocol.gamma = GammaTracking(**inputs['gamma'])
        md_protocol.validate()

        builder = cls.get_builder()
        builder.structure = structure
        builder.engine = orm.Str(engine)
        builder.protocol = orm.Dict(md_protocol.to_dict())
        builder.seeds = orm.List([inputs['seed'] + i for i in range(inputs['replicas'])])
        builder.analysis = orm.Dict(inputs['analysis'])
        frames = orm.Int(inputs['trajectory_frames'])
        if engine == 'ase':
            builder.ase.code = job_code(potential, code)  # an MLIP of another environment runs on its own python
            builder.ase.trajectory_frames = frames
            if potential is not None:
                builder.ase.potential = potential
            if calculator is not None:
                builder.ase.calculator = orm.Dict(calculator)
            for key, value in (options or {}).items():
                builder.ase.metadata.options[key] = value
        else:
            builder.lammps.md.code = code
            if potential is not None:  # None: attached later (a study's dry run, before its fit)
                builder.lammps.md.potential = potential
            builder.lammps.md.trajectory_frames = frames
            if settings:
                builder.lammps.md.settings = orm.Dict(settings)
            for key, value in (options or {}).items():
                builder.lammps.md.metadata.options[key] = value
        return builder

    # -- steps ---------------------------------------------------------------------------------------------------------
    def setup(self):
        self.ctx.protocol = MDProtocol.from_dict(self.inputs.protocol.get_dict())
        self.ctx.labels = [f'replica_{i}' for i in range(len(self.inputs.seeds))]
        protocol = self.ctx.protocol
        self.report(f'{len(self.ctx.labels)} replica(s) with engine {self.inputs.engine.value}: '
                    f'{protocol.total_steps} MD steps ({protocol.total_time:g} ps) each, '
                    f'{len(self.inputs.structure.sites)} atoms')  # fmt: skip

    def _replica_protocol(self, seed: int) -> orm.Dict:
        return orm.Dict(dataclasses.replace(self.ctx.protocol, seed=int(seed)).to_dict())

    def run_replicas(self):
        engine = self.inputs.engine.value
        futures = {}
        for label, seed in zip(self.ctx.labels, self.inputs.seeds.get_list()):
            if engine == 'ase':
                inputs = AttributeDict(self.exposed_inputs(AseMDCalculation, 'ase'))
                inputs.structure = self.inputs.structure
                inputs.protocol = self._replica_protocol(seed)
                inputs.metadata = {**inputs.get('metadata', {}), 'call_link_label': label}
                node = self.submit(AseMDCalculation, **inputs)
            else:
                inputs = AttributeDict(self.exposed_inputs(LammpsMDBaseWorkChain, 'lammps'))
                inputs.md = AttributeDict(inputs.md)
                inputs.md.structure = self.inputs.structure
                inputs.md.protocol = self._replica_protocol(seed)
                inputs.metadata = {'call_link_label': label}
                node = self.submit(LammpsMDBaseWorkChain, **inputs)
            self.report(f'launched {label} (seed {seed}): {node.process_label}<{node.pk}>')
            futures[label] = node
        return ToContext(**futures)

    def inspect_replicas(self):
        self.ctx.finished, self.ctx.halted, failed = [], [], []
        for label in self.ctx.labels:
            node = self.ctx[label]
            if node.is_finished_ok:
                self.ctx.finished.append(label)
                results = node.outputs.results
                self.report(f'{label} finished: {results["n_steps"]} steps, density {results["final_density"]:.3f} '
                            f'g/cm³, max gamma {results.get("max_gamma")}')  # fmt: skip
            elif node.exit_status == 350:
                self.ctx.halted.append(label)
                self.report(f'{label} halted on gamma: {node.exit_message}')
            else:
                failed.append(label)
                self.report(f'{label} failed with exit status {node.exit_status}: {node.exit_message}')
        self.ctx.failed = failed
        if not self.ctx.finished:
            if self.ctx.halted:
                return self.exit_codes.ERROR_GAMMA_HALT.format(labels=', '.join(self.ctx.halted))
            return self.exit_codes.ERROR_ALL_REPLICAS_FAILED.format(details=', '.join(failed))
        return None

    def analyse(self):
        thermo = {label: self.ctx[label].outputs.thermo for label in self.ctx.finished}
        try:
            analysis = analyse_melt_quench(self.inputs.protocol, self.inputs.analysis, **thermo)
        except tg_fit.TgFitError as exc:
            return self.exit_codes.ERROR_TG_FIT.format(error=str(exc))
        self.ctx.analysis = analysis
        self.ctx.figure = plot_cooling_curve(analysis['cooling_curve'], analysis['tg'])
        tg, densities = analysis['tg'], analysis['densities']
        spread = f', replica spread {tg["tg_replica_std"]:.0f} K' if tg['tg_replica_std'] is not None else ''
        self.report(f'Tg = {tg["tg"]:.0f} ± {tg["tg_stderr"]:.0f} K from {tg["quantity"]}{spread}; glass density '
                    f'{densities["mean"]:.3f} g/cm³ over {len(self.ctx.finished)} replica(s)')  # fmt: skip
        return None

    def results(self):
        for label in self.ctx.finished:
            self.out(f'structures.{label}', self.ctx[label].outputs.structure)
            self.out(f'thermo.{label}', self.ctx[label].outputs.thermo)
        for name in ('cooling_curve', 'tg', 'densities'):
            self.out(name, self.ctx.analysis[name])
        self.out('cooling_curve_figure', self.ctx.figure)
        if self.ctx.halted:
            return self.exit_codes.ERROR_GAMMA_HALT.format(labels=', '.join(self.ctx.halted))
        if self.ctx.failed:
            return self.exit_codes.ERROR_SOME_REPLICAS_FAILED.format(labels=', '.join(self.ctx.failed))
        return None


def validate_inputs(inputs, _ctx=None) -> str | None:
    """Engine inputs present, potential covers the structure, seeds valid, a cooling ramp sampled well enough."""
    engine = inputs['engine'].value if 'engine' in inputs else 'ase'
    if engine not in ENGINES:
        return f'unknown engine {engine!r}; use one of {ENGINES}.'
    namespace = inputs.get(engine)
    if not namespace:
        return f'engine `{engine}` needs its inputs in the `{engine}` namespace (code, potential, ...).'
    if 'protocol' not in inputs or 'structure' not in inputs or 'seeds' not in inputs:
        return None
    try:
        protocol = MDProtocol.from_dict(inputs['protocol'].get_dict())
    except (MDProtocolError, TypeError) as exc:
        return f'invalid MD protocol: {exc}'
    seeds = inputs['seeds'].get_list()
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) and 0 < s < 900_000_000 for s in seeds):
        return f'`seeds` must be distinct integers in 1..899999999, one per replica; got {seeds}.'
    analysis = inputs['analysis'].get_dict() if 'analysis' in inputs else {'quantity': 'volume', 'bin_width': 50.0}
    if analysis.get('quantity') not in TG_QUANTITIES or not analysis.get('bin_width', 0) > 0:
        return f'`analysis` needs `quantity` in {TG_QUANTITIES} and a positive `bin_width` (K); got {analysis}.'

    from aiida_glassml.md.protocol import cooling_stage_index

    index = cooling_stage_index(protocol)
    if index is None:
        return 'the protocol has no cooling ramp (t_end < t_start), so there is no cooling curve; use melt_quench().'
    stage = protocol.stages[index]
    bins = abs(stage.t_start - stage.t_end) / analysis['bin_width']
    lines = protocol.stage_steps(stage) / protocol.thermo_interval
    if min(bins, lines) < 7:
        return (f'the cooling ramp gives {int(lines)} thermo lines in {bins:.0f} bins of {analysis["bin_width"]} K; '
                'a two-line Tg fit needs at least 7 of each: lower `thermo_interval` or `analysis.bin_width`.')

    structure = inputs['structure']
    symbols = {kind.symbol for kind in structure.kinds}
    potential = namespace.get('potential') if engine == 'ase' else namespace.get('md', {}).get('potential')
    if potential is not None:
        missing = sorted(symbols - set(potential.elements))
        if missing:
            return (f'the potential covers {potential.elements} but the structure also contains {missing}; fit or '
                    'choose a potential that includes every element of the structure.')  # fmt: skip
    # the engine's own checks on the complete inputs of one replica
    if engine == 'ase':
        from aiida_glassml.calculations.ase_md import validate_inputs as validate_ase

        return validate_ase({**namespace, 'structure': structure, 'protocol': inputs['protocol']})
    return LammpsMDBaseWorkChain._process_class.validate_md_inputs(
        {**namespace['md'], 'structure': structure, 'protocol': inputs['protocol']}
    )

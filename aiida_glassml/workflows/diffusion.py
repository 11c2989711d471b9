"""``DiffusionWorkChain`` (``glassml.diffusion``): ion diffusion of glasses over a temperature series, as the NaFePO4
study: every (temperature, heating variant nvt|npt, glass replica) is one MD run (ASE or LAMMPS), all submitted in
one step; each run's dump is reduced where it lies by a ``TrajectoryAnalysisCalculation``; light calcfunctions then
give D(T) per species over replicas, Arrhenius fits (all T and above ``arrhenius_t_min``), σ_NE, the van Hove self
part, fast/slow g(r), the ring–Na proximity and the figures. Protocols: ``diffusion.yaml`` (``balanced`` = the study).
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain
from aiida.plugins import CalculationFactory, WorkflowFactory

from aiida_glassml.analysis import AnalysisInputError
from aiida_glassml.analysis import diffusion_series as series
from aiida_glassml.calcfunctions.diffusion import aggregate_diffusion, input_name, plot_diffusion, ring_proximity_summary
from aiida_glassml.data.mlip_potential import job_code
from aiida_glassml.md.protocol import HEATING_VARIANTS, MDProtocol, MDProtocolError, diffusion_run, production_first_step
from aiida_glassml.protocols import ProtocolMixin
from aiida_glassml.workflows.submit_once import SubmitOnceMixin

AseMDCalculation = CalculationFactory('glassml.ase_md')
LammpsMDBaseWorkChain = WorkflowFactory('glassml.lammps_md_base')
TrajectoryAnalysisCalculation = CalculationFactory('glassml.trajectory_analysis')

ENGINES = ('ase', 'lammps')
#: dump format of each engine's full trajectory
DUMP_FORMATS = {'ase': 'extxyz', 'lammps': 'lammps-dump'}
SERIES_KEYS = ('arrhenius_t_min', 'conductivity_temperature', 'mobility_temperature')


def run_label(temperature: float, variant: str, glass: str) -> str:
    text = f'{temperature:g}'.replace('.', 'p')
    return f'T{text}_{variant}_{glass}'


class DiffusionWorkChain(SubmitOnceMixin, ProtocolMixin, WorkChain):
    """Diffusion of ``structures`` (the glass replicas) at ``temperatures`` after heating in each of ``variants``
    (see the module docstring)."""

    _protocol_file = 'diffusion'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True,
                             help='The glasses (e.g. the replicas of MeltQuenchWorkChain), one MD run each per '
                                  'temperature and heating variant.')  # fmt: skip
        spec.input('engine', valid_type=orm.Str, default=lambda: orm.Str('ase'),
                   help=f'MD engine, one of {ENGINES}; its inputs go in the namespace of the same name.')
        spec.input('temperatures', valid_type=orm.List, help='Target temperatures (K).')
        spec.input('variants', valid_type=orm.List, default=lambda: orm.List(list(HEATING_VARIANTS)),
                   help=f'Heating variants, each its own branch: subset of {HEATING_VARIANTS}.')
        spec.input('schedule', valid_type=orm.Dict, default=lambda: orm.Dict(),
                   help='aiida_glassml.md.protocol.diffusion_run arguments: t_start, heating_rate (K/ps), '
                        'equilibration_time, production_time (ps), pressure (bar), minimize.')  # fmt: skip
        spec.input('md', valid_type=orm.Dict, default=lambda: orm.Dict(),
                   help='MDProtocol settings: timestep, thermostat, tdamp, pdamp, dump_interval, thermo_interval...')
        spec.input('seed', valid_type=orm.Int, default=lambda: orm.Int(2001),
                   help='Velocity seed of the first run; run i gets seed + i.')
        spec.input('analysis', valid_type=orm.Dict, default=lambda: orm.Dict(),
                   help='Per-run analysis parameters (diffusion_series.RUN_DEFAULTS).')
        spec.input('series', valid_type=orm.Dict, default=lambda: orm.Dict(),
                   help=f'Series options {SERIES_KEYS} (K); a temperature not in `temperatures` is refused.')
        spec.input('keep_trajectory', valid_type=orm.Bool, default=lambda: orm.Bool(False),
                   help='Also copy each full dump into the repository (both engines); false leaves it in the remote folder.')
        spec.expose_inputs(AseMDCalculation, namespace='ase', exclude=('structure', 'protocol', 'retrieve_trajectory'),
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'AseMDCalculation inputs (engine `ase`).'})  # fmt: skip
        spec.expose_inputs(LammpsMDBaseWorkChain, namespace='lammps', exclude=('md.structure', 'md.protocol'),
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'LammpsMDBaseWorkChain inputs (engine `lammps`).'})  # fmt: skip
        spec.expose_inputs(TrajectoryAnalysisCalculation, namespace='trajectory_analysis',
                           exclude=('parent_folder', 'production', 'parameters'),
                           namespace_options={'help': 'TrajectoryAnalysisCalculation code (glassml-python on the MD '
                                                      'computer) and options.'})  # fmt: skip
        spec.inputs.validator = validate_inputs

        spec.outline(cls.setup, cls.run_md, cls.inspect_md, cls.run_analyses, cls.inspect_analyses, cls.aggregate,
                     cls.results)  # fmt: skip
        spec.output('diffusion', valid_type=orm.Dict,
                    help='D(T) per heating variant (and `all`) per species: replica mean, uncertainty, per replica.')
        spec.output('arrhenius', valid_type=orm.Dict,
                    help='Per variant and species: `all` (every T) and `high` (T ≥ arrhenius_t_min) fits: Ea ± err '
                         '(eV), D0, low-T deviation ln(D/D_fit).')  # fmt: skip
        spec.output('conductivity', valid_type=orm.Dict, help='Nernst–Einstein σ (S/cm) at conductivity_temperature.')
        spec.output('msd', valid_type=orm.ArrayData, help='Replica-mean MSD per species, temperature and variant.')
        spec.output('van_hove', valid_type=orm.ArrayData, help='Replica-mean self van Hove of the mobile ion.')
        spec.output('mobility_rdf', valid_type=orm.ArrayData, required=False,
                    help='Fast/slow 25 % partial g(r) at mobility_temperature per variant.')
        spec.output('ring_proximity', valid_type=orm.Dict, required=False,
                    help='Ring sizes near the mobile ions: in each glass and for the fast/slow sets.')
        spec.output_namespace('figures', valid_type=orm.SinglefileData, dynamic=True,
                              help='PNG: msd, arrhenius, van_hove, mobility_rdf, ring_proximity.')
        spec.output_namespace('analyses', valid_type=orm.Dict, dynamic=True, help='Per-run analysis results.')
        spec.exit_code(300, 'ERROR_ALL_RUNS_FAILED', message='no MD run finished: {details}')
        spec.exit_code(310, 'ERROR_ALL_ANALYSES_FAILED', message='no trajectory analysis finished: {details}')
        spec.exit_code(320, 'ERROR_NO_ARRHENIUS',
                       message='no Arrhenius fit of {species}: {reason} (outputs of the finished runs are attached).')
        spec.exit_code(401, 'ERROR_SOME_RUNS_FAILED', message='run(s) {labels} failed; the results come from the others.')

    # -- protocol ----------------------------------------------------------------------------------------------------
    @classmethod
    def get_builder_from_protocol(cls, code, structures, potential=None, engine: str = 'ase', protocol=None,
                                  overrides=None, analysis_code=None, options: dict | None = None,
                                  settings: dict | None = None, **_):  # fmt: skip
        """A builder from a protocol of ``diffusion.yaml``. ``code``: the venv python (``glassml-python``) for
        ``ase``, ``lmp`` for ``lammps``; ``analysis_code``: the python code that analyses the dumps (default ``code``
        for ``ase``). ``structures``: {label: StructureData} or a list (labels replica_0, ...)."""
        if engine not in ENGINES:
            raise ValueError(f'unknown engine {engine!r}; use one of {ENGINES}.')
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if not isinstance(structures, dict):
            structures = {f'replica_{i}': s for i, s in enumerate(structures)}
        builder = cls.get_builder()
        builder.structures = structures
        builder.engine = orm.Str(engine)
        builder.temperatures = orm.List([float(t) for t in inputs['temperatures']])
        builder.variants = orm.List(list(inputs['variants']))
        builder.schedule = orm.Dict(inputs['schedule'])
        builder.md = orm.Dict(inputs['md'])
        builder.seed = orm.Int(inputs['seed'])
        builder.analysis = orm.Dict(inputs['analysis'])
        builder.series = orm.Dict(inputs['series'])
        builder.keep_trajectory = orm.Bool(inputs['keep_trajectory'])
        frames = orm.Int(inputs['trajectory_frames'])
        if engine == 'ase':
            builder.ase.code = job_code(potential, code)  # an MLIP of another environment runs on its own python
            builder.ase.trajectory_frames = frames
            if potential is not None:
                builder.ase.potential = potential
            for key, value in (options or {}).items():
                builder.ase.metadata.options[key] = value
        else:
            lammps = inputs['lammps']
            builder.lammps.md.code = code
            if potential is not None:  # None: attached later (a study's dry run, before its fit)
                builder.lammps.md.potential = potential
            builder.lammps.md.trajectory_frames = frames
            run_settings = dict(settings or {})
            if lammps['kokkos']:
                run_settings.setdefault('kokkos', True)
                run_settings.setdefault('gpus', int(lammps['gpus']))
            if run_settings:
                builder.lammps.md.settings = orm.Dict(run_settings)
            builder.lammps.md.metadata.options.max_wallclock_seconds = int(lammps['max_wallclock_seconds'])
            for key, value in (options or {}).items():
                builder.lammps.md.metadata.options[key] = value
        analysis_code = analysis_code or (code if engine == 'ase' else None)
        if analysis_code is not None:
            builder.trajectory_analysis.code = analysis_code
        builder.trajectory_analysis.metadata.options.max_wallclock_seconds = int(inputs['analysis_wallclock_seconds'])
        return builder

    # -- steps -------------------------------------------------------------------------------------------------------
    def setup(self):
        self.ctx.runs = {}  # label -> (temperature, variant, glass, seed)
        seed = self.inputs.seed.value
        for temperature in self.inputs.temperatures.get_list():
            for variant in self.inputs.variants.get_list():
                for glass in sorted(self.inputs.structures):
                    self.ctx.runs[run_label(float(temperature), variant, glass)] = (float(temperature), variant, glass,
                                                                                     seed + len(self.ctx.runs))  # fmt: skip
        example = _run_protocol(self.inputs, *next(iter(self.ctx.runs.values()))[:2], seed=seed)
        self.report(f'{len(self.ctx.runs)} MD runs ({len(self.inputs.temperatures)} temperatures × '
                    f'{len(self.inputs.variants)} heating variants × {len(self.inputs.structures)} glasses) with '
                    f'engine {self.inputs.engine.value}; first run: {example.total_steps} steps')  # fmt: skip

    def run_md(self):
        engine = self.inputs.engine.value
        keep = self.inputs.keep_trajectory.value
        futures = {}
        for label, (temperature, variant, glass, seed) in self.ctx.runs.items():
            protocol = orm.Dict(_run_protocol(self.inputs, temperature, variant, seed=seed).to_dict())
            structure = self.inputs.structures[glass]
            if engine == 'ase':
                inputs = AttributeDict(self.exposed_inputs(AseMDCalculation, 'ase'))
                inputs.update(structure=structure, protocol=protocol, retrieve_trajectory=orm.Bool(keep))
                inputs.metadata = {**inputs.get('metadata', {}), 'call_link_label': label}
                node = self.submit(AseMDCalculation, **inputs)
            else:
                inputs = AttributeDict(self.exposed_inputs(LammpsMDBaseWorkChain, 'lammps'))
                inputs.md = AttributeDict(inputs.md)
                inputs.md.update(structure=structure, protocol=protocol)
                _lammps_keep_trajectory(inputs.md, keep)
                inputs.metadata = {'call_link_label': label}
                node = self.submit(LammpsMDBaseWorkChain, **inputs)
            futures[label] = node
        self.report(f'submitted {len(futures)} MD runs: {", ".join(futures)}')
        return ToContext(**futures)

    def inspect_md(self):
        self.ctx.finished, self.ctx.failed = [], []
        for label in self.ctx.runs:
            node = self.ctx[label]
            if node.is_finished_ok:
                self.ctx.finished.append(label)
            else:
                self.ctx.failed.append(label)
                self.report(f'{label} failed with exit status {node.exit_status}: {node.exit_message}')
        if not self.ctx.finished:
            return self.exit_codes.ERROR_ALL_RUNS_FAILED.format(details=', '.join(self.ctx.failed))
        return None

    def run_analyses(self):
        parameters = self.inputs.analysis.get_dict()
        mobility_temperature = self.inputs.series.get_dict().get('mobility_temperature')
        engine = self.inputs.engine.value
        futures = {}
        for label in self.ctx.finished:
            temperature, variant, glass, _ = self.ctx.runs[label]
            remote = self.ctx[label].outputs.remote_folder
            protocol = MDProtocol.from_dict(remote.creator.inputs.protocol.get_dict())  # as run (after any restart)
            production = {
                'trajectory_file': self.ctx[label].outputs.results['full_trajectory_file'],
                'format': DUMP_FORMATS[engine], 'first_step': production_first_step(protocol),
                'every': protocol.dump_interval, 'timestep_ps': protocol.timestep, 'temperature': temperature,
                'variant': variant, 'replica': glass, 'label': label,
            }  # fmt: skip
            at_mobility_t = mobility_temperature is not None and temperature == float(mobility_temperature)
            inputs = AttributeDict(self.exposed_inputs(TrajectoryAnalysisCalculation, 'trajectory_analysis'))
            inputs.update(parent_folder=remote, production=orm.Dict(production),
                          parameters=orm.Dict({**parameters, 'mobility_rdf': at_mobility_t, 'rings': at_mobility_t}))
            inputs.metadata = {**inputs.get('metadata', {}), 'call_link_label': f'analysis_{label}'}
            futures[f'analysis_{label}'] = self.submit(TrajectoryAnalysisCalculation, **inputs)
        return ToContext(**futures)

    def inspect_analyses(self):
        self.ctx.analysed = []
        for label in self.ctx.finished:
            node = self.ctx[f'analysis_{label}']
            if node.is_finished_ok:
                self.ctx.analysed.append(label)
                diffusion = node.outputs.results['diffusion']
                mobile = node.outputs.results['mobility']['species']
                fit = diffusion.get(mobile, {})
                value = f'D = {fit["D"]:.3g} ± {fit["D_err"]:.2g} Å²/ps' if fit.get('diffusive') else 'not diffusive'
                self.report(f'{label}: {mobile} {value}')
            else:
                self.ctx.failed.append(label)
                self.report(f'analysis of {label} failed ({node.exit_status}): {node.exit_message}')
        if not self.ctx.analysed:
            return self.exit_codes.ERROR_ALL_ANALYSES_FAILED.format(details=', '.join(self.ctx.finished))
        return None

    def aggregate(self):
        series_options = self.inputs.series.get_dict()
        analysis = series.fill_run_parameters(self.inputs.analysis.get_dict())
        nodes = {}
        for label in self.ctx.analysed:
            outputs = self.ctx[f'analysis_{label}'].outputs
            nodes[input_name('results', label)] = outputs.results
            nodes[input_name('msd', label)] = outputs.msd
            nodes[input_name('van_hove', label)] = outputs.van_hove
            if 'mobility_rdf' in outputs:
                nodes[input_name('mobility_rdf', label)] = outputs.mobility_rdf
        parameters = orm.Dict({'arrhenius_t_min': series_options.get('arrhenius_t_min'),
                               'conductivity_temperature': series_options.get('conductivity_temperature'),
                               'charges': analysis['charges']})  # fmt: skip
        self.ctx.summary = aggregate_diffusion(parameters, **nodes)
        extra = {}
        if 'mobility_rdf' in self.ctx.summary:
            extra['mobility_rdf'] = self.ctx.summary['mobility_rdf']
        with_rings = {k: v for k, v in nodes.items() if k.startswith('res_') and v.get('ring_proximity')}
        if with_rings:
            glasses = {input_name('structure', g): s for g, s in self.inputs.structures.items()}
            ring_parameters = {k: analysis[k] for k in ('mobile', 'formers', 'anions', 'max_ring_size', 'ring_distance')}
            self.ctx.rings = ring_proximity_summary(orm.Dict(ring_parameters), **glasses, **with_rings)
            extra['ring_proximity'] = self.ctx.rings
        self.ctx.figures = plot_diffusion(self.ctx.summary['arrhenius'], self.ctx.summary['diffusion'],
                                          self.ctx.summary['msd'], self.ctx.summary['van_hove'], **extra)  # fmt: skip
        mobile = analysis['mobile']
        for variant, fits in self.ctx.summary['arrhenius'].get_dict().items():
            for key, fit in fits.get(mobile, {}).items():
                if fit.get('fitted'):
                    self.report(f'{variant} {key}: Ea({mobile}) = {fit["Ea_eV"]:.3f} ± {fit["Ea_err_eV"]:.3f} eV')

    def results(self):
        for name in ('diffusion', 'arrhenius', 'conductivity', 'msd', 'van_hove', 'mobility_rdf'):
            if name in self.ctx.summary:
                self.out(name, self.ctx.summary[name])
        if 'rings' in self.ctx:
            self.out('ring_proximity', self.ctx.rings)
        for name, node in self.ctx.figures.items():
            self.out(f'figures.{name}', node)
        for label in self.ctx.analysed:
            self.out(f'analyses.{label}', self.ctx[f'analysis_{label}'].outputs.results)
        mobile = series.fill_run_parameters(self.inputs.analysis.get_dict())['mobile']
        fits = [v.get(mobile, {}).get('all', {}) for v in self.ctx.summary['arrhenius'].get_dict().values()]
        if not any(f.get('fitted') for f in fits):
            reasons = '; '.join(sorted({f.get('reason', 'no data') for f in fits})) or 'no diffusive run'
            return self.exit_codes.ERROR_NO_ARRHENIUS.format(species=mobile, reason=reasons)
        if self.ctx.failed:
            return self.exit_codes.ERROR_SOME_RUNS_FAILED.format(labels=', '.join(self.ctx.failed))
        return None


def _lammps_keep_trajectory(md_inputs, keep: bool) -> None:
    """Ask LammpsMDCalculation not to retrieve the dump when it offers the setting (``retrieve_trajectory``)."""
    from aiida_glassml.calculations.lammps_md import SETTINGS_KEYS

    if 'retrieve_trajectory' in SETTINGS_KEYS:
        settings = md_inputs['settings'].get_dict() if 'settings' in md_inputs else {}
        md_inputs['settings'] = orm.Dict({**settings, 'retrieve_trajectory': keep})


def _run_protocol(inputs, temperature: float, variant: str, seed: int) -> MDProtocol:
    """The MDProtocol of one run (raises MDProtocolError on bad schedule or settings)."""
    schedule = inputs['schedule'].get_dict() if 'schedule' in inputs else {}
    settings = inputs['md'].get_dict() if 'md' in inputs else {}
    try:
        return diffusion_run(temperature, variant, **schedule, **{**settings, 'seed': int(seed)})
    except TypeError as exc:
        raise MDProtocolError(f'schedule/md: {exc}; see aiida_glassml.md.protocol.diffusion_run.') from exc


def validate_inputs(inputs, _ctx=None) -> str | None:  # noqa: PLR0911, PLR0912
    """Every bad input refused before anything is stored: temperatures, schedule, analysis, series, potential and the
    engine's own checks on one run."""
    engine = inputs['engine'].value if 'engine' in inputs else 'ase'
    if engine not in ENGINES:
        return f'unknown engine {engine!r}; use one of {ENGINES}.'
    namespace = inputs.get(engine)
    if not namespace:
        return f'engine `{engine}` needs its inputs in the `{engine}` namespace (code, potential, ...).'
    structures = inputs.get('structures') or {}
    if not structures:
        return '`structures` is empty; give one or more glasses (e.g. the replicas of MeltQuenchWorkChain).'
    if 'temperatures' not in inputs:
        return None
    temperatures = inputs['temperatures'].get_list()
    if not temperatures or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0
                                   for t in temperatures):  # fmt: skip
        return f'`temperatures` must be a non-empty list of positive numbers (K), got {temperatures}.'
    if len(set(temperatures)) != len(temperatures):
        return f'`temperatures` has repeats ({temperatures}); give each temperature once.'
    variants = inputs['variants'].get_list() if 'variants' in inputs else list(HEATING_VARIANTS)
    if not variants or set(variants) - set(HEATING_VARIANTS) or len(set(variants)) != len(variants):
        return f'`variants` must be distinct heating variants from {HEATING_VARIANTS}, got {variants}.'
    seed = inputs['seed'].value if 'seed' in inputs else 2001
    try:
        protocols = [_run_protocol(inputs, float(t), v, seed) for t in temperatures for v in variants]
    except MDProtocolError as exc:
        return f'invalid diffusion schedule: {exc}'
    if not 0 < seed or seed + len(protocols) * len(structures) >= 900_000_000:
        return f'`seed` must leave room for one seed per run in 1..899999999, got {seed}.'
    production = protocols[0].stages[-1].time
    if protocols[0].dump_interval == 0:
        return '`md.dump_interval` is 0, so no trajectory is written to analyse; give a dump interval in steps.'
    frames = protocols[0].stage_steps(protocols[0].stages[-1]) // protocols[0].dump_interval
    if frames < 3:
        return (f'the production ({production:g} ps) holds {frames} dumped frame(s) at dump_interval '
                f'{protocols[0].dump_interval}; lower `md.dump_interval` or lengthen the production (need ≥ 3).')
    try:
        analysis = series.fill_run_parameters(inputs['analysis'].get_dict() if 'analysis' in inputs else {})
    except AnalysisInputError as exc:
        return f'invalid `analysis`: {exc}'
    for name in ('van_hove_time', 'mobility_time'):
        if analysis[name] > production:
            return (f'`analysis.{name}` ({analysis[name]:g} ps) is longer than the production ({production:g} ps); '
                    'lower it or lengthen `schedule.production_time`.')
    options = inputs['series'].get_dict() if 'series' in inputs else {}
    unknown = sorted(set(options) - set(SERIES_KEYS))
    if unknown:
        return f'unknown `series` keys {unknown}; allowed are {list(SERIES_KEYS)}.'
    for name in ('conductivity_temperature', 'mobility_temperature'):
        if options.get(name) is not None and float(options[name]) not in {float(t) for t in temperatures}:
            return f'`series.{name}` = {options[name]} K is not one of the temperatures {temperatures}.'
    t_min = options.get('arrhenius_t_min')
    if t_min is not None and sum(t >= t_min for t in temperatures) < 2:
        return (f'`series.arrhenius_t_min` = {t_min} K leaves fewer than two temperatures above it ({temperatures}); '
                'lower it or add temperatures.')
    if 'trajectory_analysis' not in inputs or 'code' not in inputs['trajectory_analysis']:
        return '`trajectory_analysis.code` is missing: the python code (glassml-python) on the MD computer.'
    potential = namespace.get('potential') if engine == 'ase' else namespace.get('md', {}).get('potential')
    for label, structure in structures.items():
        symbols = {kind.symbol for kind in structure.kinds}
        if potential is not None:
            missing = sorted(symbols - set(potential.elements))
            if missing:
                return (f'the potential covers {potential.elements} but glass {label!r} also contains {missing}; '
                        'choose a potential that includes every element of the glasses.')
        if analysis['mobile'] not in symbols:
            return f'glass {label!r} has no {analysis["mobile"]} (analysis.mobile); name an ion that is in it.'
    # the engine's own checks on the complete inputs of one run (Kokkos resources, gamma, calculator...)
    protocol = orm.Dict(protocols[0].to_dict())
    structure = next(iter(structures.values()))
    if engine == 'ase':
        from aiida_glassml.calculations.ase_md import validate_inputs as validate_ase

        return validate_ase({**namespace, 'structure': structure, 'protocol': protocol})
    return LammpsMDBaseWorkChain._process_class.validate_md_inputs({**namespace['md'], 'structure': structure,
                                                                    'protocol': protocol})  # fmt: skip

"""``PotentialBenchmarkWorkChain`` (``glassml.potential_benchmark``): interatomic potentials side by side.

Given a DFT test set, every ACE potential and MLIP is evaluated on it (``EvaluatePotentialCalculation``: energy and
force MAE/RMSE, energies raw and after a fitted per-element offset); a classical potential gets a row saying why it has
none. Given glasses (or random packings of compositions), each potential runs the same melt-quench
(``MeltQuenchWorkChain``), then the same structure analysis (``GlassAnalysisWorkChain``: density, Qⁿ, bridging,
edge sharing, former–former bonds, g(r), S(Q)) and elastic moduli (``ElasticWorkChain``). Outputs: the metrics table
(Dict, Markdown, CSV), the glass table (Dict, Markdown) and overlaid g(r) and S(Q) per glass (PNG). The rows and
figures are plain Python in :mod:`aiida_glassml.common.benchmark`.
"""

from __future__ import annotations

import copy

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from aiida_glassml.data import AcePotentialData, TrainingSetData
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.protocols import ProtocolMixin
from aiida_glassml.workflows.submit_once import SubmitOnceMixin

POTENTIAL_TYPES = (AcePotentialData, MlipPotentialData, ClassicalPotentialData)
CLASSICAL_NOTE = ('classical potential: not evaluated on DFT frames (its energies are not on a DFT scale and the '
                  'evaluation job takes ACE potentials and MLIPs)')  # fmt: skip


class BenchmarkInputError(ValueError):
    """Benchmark inputs that cannot run; the message names the input and the fix."""


def kind_of(potential) -> str:
    return {AcePotentialData: 'ace', MlipPotentialData: 'mlip'}.get(type(potential), 'classical')


def _failure(node) -> str:
    return f'{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message}'


def _serial(engine: str) -> dict | None:
    # the LAMMPS here has no MPI launcher; a cluster's options come through the overrides
    return {'withmpi': False} if engine == 'lammps' else None


class PotentialBenchmarkWorkChain(SubmitOnceMixin, ProtocolMixin, WorkChain):
    """Potentials side by side: errors on a DFT test set, and the glasses each makes from the same start."""

    _protocol_file = 'potential_benchmark'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace('potentials', valid_type=POTENTIAL_TYPES, dynamic=True,
                             help='The potentials, by label (ACE, MLIP or classical).')
        spec.input('test_set', valid_type=TrainingSetData, required=False, help='DFT frames to evaluate on.')
        spec.input('reference_energies', valid_type=orm.Dict, required=False,
                   help='Per-element reference energies (eV) for every potential; default: an ACE potential\'s own.')
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, required=False,
                             help='Starting structures (glasses or random packings), by name; each potential '
                                  'melt-quenches each one.')  # fmt: skip
        spec.input('settings', valid_type=orm.Dict,
                   help='Protocol inputs (potential_benchmark.yaml): melt_quench/analysis/elastic protocol and '
                        'overrides, ace_engine, parity.')  # fmt: skip
        spec.input_namespace('codes', valid_type=orm.AbstractCode, dynamic=True,
                             help='`python` (glassml-python: evaluation, ASE MD, analysis); `lammps` for classical '
                                  'potentials or ace_engine lammps.')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.has_test_set)(cls.run_evaluations, cls.inspect_evaluations),
            if_(cls.has_structures)(
                cls.run_glasses, cls.inspect_glasses,
                cls.run_properties, cls.inspect_properties,
            ),
            cls.tabulate,
        )  # fmt: skip
        spec.output('metrics_table', valid_type=orm.Dict, required=False,
                    help='One row per potential: energy/force MAE and RMSE (meV/atom, meV/Å), raw and after offset.')
        spec.output('metrics_markdown', valid_type=orm.SinglefileData, required=False, help='The metrics table (md).')
        spec.output('metrics_csv', valid_type=orm.SinglefileData, required=False, help='The metrics table (CSV).')
        spec.output('structure_table', valid_type=orm.Dict, required=False,
                    help='One row per potential and glass: density, Qⁿ/Pⁿ, bridging, edge sharing, former–former '
                         'bonds, K/G/E.')  # fmt: skip
        spec.output('structure_markdown', valid_type=orm.SinglefileData, required=False, help='The glass table (md).')
        spec.output_namespace('metrics', valid_type=orm.Dict, dynamic=True, help='Each evaluation\'s metrics.')
        spec.output_namespace('glasses', valid_type=orm.StructureData, dynamic=True,
                              help='Quenched glasses: <potential>_<structure>_<replica>.')
        spec.output_namespace('figures', valid_type=orm.SinglefileData, dynamic=True,
                              help='Overlaid g(r) (rdf_<structure>) and S(Q) (sq_<structure>), PNG.')
        spec.exit_code(313, 'ERROR_STEPS_FAILED', message='step(s) failed: {details} (the other results are kept)')

    # -- protocol ----------------------------------------------------------------------------------------------------
    @classmethod
    def get_builder_from_protocol(cls, code, potentials: dict, test_set: TrainingSetData | None = None,
                                  structures: dict | None = None, reference_energies: dict | None = None,
                                  protocol: str | None = None, overrides: dict | None = None,
                                  lammps_code: orm.AbstractCode | None = None, **_):  # fmt: skip
        """A builder from a protocol of ``potential_benchmark.yaml``. ``code``: the venv python (``glassml-python``);
        ``lammps_code`` for classical potentials. Every child is built once here on the given inputs, so bad input
        (a potential that misses an element, a bad override) raises BenchmarkInputError before anything is stored."""
        settings = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.potentials = dict(potentials or {})
        builder.settings = orm.Dict(settings)
        builder.codes = {'python': code, **({'lammps': lammps_code} if lammps_code is not None else {})}
        if test_set is not None:
            builder.test_set = test_set
        if reference_energies is not None:
            builder.reference_energies = (reference_energies if isinstance(reference_energies, orm.Dict)
                                          else orm.Dict(dict(reference_energies)))  # fmt: skip
        if structures:
            builder.structures = dict(structures)
        message = validate_inputs(builder._inputs(prune=True))
        if message:
            raise BenchmarkInputError(message)
        return builder

    # -- steps ---------------------------------------------------------------------------------------------------------
    def setup(self):
        self.ctx.settings = self.inputs.settings.get_dict()
        self.ctx.failed = []
        self.ctx.notes = {}
        self.ctx.glass_notes = {}
        self.ctx.evaluation_keys = []
        self.ctx.glass_keys = []
        self.ctx.property_keys = []

    def has_test_set(self):
        return 'test_set' in self.inputs

    def has_structures(self):
        return bool(self.inputs.get('structures'))

    def _submit(self, builder, label: str):
        builder.metadata.call_link_label = label
        return self.submit(builder)

    def run_evaluations(self):
        from aiida_glassml.calculations.evaluate_potential import evaluation_builder

        futures = {}
        for label, potential in sorted(self.inputs.potentials.items()):
            if isinstance(potential, ClassicalPotentialData):
                self.ctx.notes[label] = CLASSICAL_NOTE
                continue
            builder = evaluation_builder(potential, self.inputs.test_set, self.inputs.get('reference_energies'),
                                         parity=bool(self.ctx.settings.get('parity')),
                                         code=self.inputs.codes.python)  # fmt: skip
            futures[f'evaluate_{label}'] = self._submit(builder, f'evaluate_{label}')
        self.ctx.evaluation_keys = sorted(futures)
        self.report(f'evaluating {len(futures)} potential(s) on TrainingSetData<{self.inputs.test_set.pk}> '
                    f'({self.inputs.test_set.n_frames} frames)')  # fmt: skip
        return ToContext(**futures)

    def inspect_evaluations(self):
        for key in self.ctx.evaluation_keys:
            node = self.ctx[key]
            label = key[len('evaluate_'):]
            if not node.is_finished_ok or 'metrics' not in node.outputs:
                self.ctx.failed.append(f'evaluation {label}: {_failure(node)}')
                self.ctx.notes[label] = f'evaluation failed: {_failure(node)}'
                continue
            self.out(f'metrics.{label}', node.outputs.metrics)
            metrics = node.outputs.metrics.get_dict()
            self.report(f'{label}: force MAE {metrics["force_mae"]:.0f} meV/Å, energy MAE {metrics["energy_mae"]:.1f} '
                        f'meV/atom ({metrics.get("energy_mae_offset", float("nan")):.1f} after offset)')  # fmt: skip

    def run_glasses(self):
        futures = {}
        for label, potential in sorted(self.inputs.potentials.items()):
            for name, structure in sorted(self.inputs.structures.items()):
                builder = melt_quench_builder(self.ctx.settings, dict(self.inputs.codes), potential, structure)
                futures[f'mq_{label}_{name}'] = self._submit(builder, f'melt_quench_{label}_{name}')
        self.ctx.glass_keys = sorted(futures)
        return ToContext(**futures)

    def inspect_glasses(self):
        self.ctx.glasses = {}
        for key in self.ctx.glass_keys:
            node = self.ctx[key]
            label, name = self._split(key[3:])
            if not node.is_finished_ok and 'structures' not in node.outputs:
                self.ctx.failed.append(f'melt-quench {label}/{name}: {_failure(node)}')
                self.ctx.glass_notes[f'{label}/{name}'] = f'melt-quench failed: {_failure(node)}'
                continue
            if not node.is_finished_ok:  # some replicas made glasses: use them, and say so
                self.ctx.failed.append(f'melt-quench {label}/{name}: {_failure(node)}')
            self.ctx.glasses[(label, name)] = dict(node.outputs.structures)
            for replica, structure in node.outputs.structures.items():
                self.out(f'glasses.{label}_{name}_{replica}', structure)

    def _split(self, key: str) -> tuple[str, str]:
        """``<label>_<structure>`` back into its parts (labels may contain underscores)."""
        for label in sorted(self.inputs.potentials, key=len, reverse=True):
            if key.startswith(f'{label}_') and key[len(label) + 1:] in self.inputs.structures:
                return label, key[len(label) + 1:]
        raise ValueError(f'cannot split {key!r}')

    def run_properties(self):
        futures = {}
        settings = self.ctx.settings
        codes = dict(self.inputs.codes)
        for (label, name), replicas in sorted(self.ctx.glasses.items()):
            first = replicas[sorted(replicas)[0]]
            futures[f'analysis_{label}_{name}'] = self._submit(analysis_builder(settings, codes, first),
                                                               f'analysis_{label}_{name}')  # fmt: skip
            if settings.get('elastic') is None:
                continue
            builder = elastic_builder(settings, codes, self.inputs.potentials[label], replicas)
            futures[f'elastic_{label}_{name}'] = self._submit(builder, f'elastic_{label}_{name}')
        self.ctx.property_keys = sorted(futures)
        return ToContext(**futures)

    def inspect_properties(self):
        for key in self.ctx.property_keys:
            node = self.ctx[key]
            if not node.is_finished_ok:
                stage, rest = key.split('_', 1)
                self.ctx.failed.append(f'{stage} {rest}: {_failure(node)}')

    def tabulate(self):
        from aiida_glassml.calcfunctions.benchmark import tabulate_benchmark

        parts, index = {}, {}

        def add(stage: str, label: str, glass: str, name: str, node) -> None:
            link = f'part_{len(parts)}'
            parts[link] = node
            index[link] = [stage, label, glass, name]

        for key in self.ctx.evaluation_keys:
            node = self.ctx[key]
            if node.is_finished_ok and 'metrics' in node.outputs:
                add('metrics', key[len('evaluate_'):], '', 'metrics', node.outputs.metrics)
        md_cost = {}
        for key in self.ctx.glass_keys:
            node = self.ctx[key]
            label, glass = self._split(key[3:])
            if 'densities' in node.outputs:
                add('glasses', label, glass, 'densities', node.outputs.densities)
            cost = md_cost_of(node, len(self.inputs.structures[glass].sites))
            if cost is not None:
                md_cost[f'{label}/{glass}'] = cost
        for key in self.ctx.property_keys:
            node = self.ctx[key]
            stage, rest = key.split('_', 1)
            label, glass = self._split(rest)
            if stage == 'analysis' and 'structure' in node.outputs:
                for name in ('results', 'rdf', 'real_space', 'structure_factor'):
                    if name in node.outputs.structure:
                        add(stage, label, glass, name, node.outputs.structure[name])
            elif stage == 'elastic' and 'moduli' in node.outputs:
                add(stage, label, glass, 'moduli', node.outputs.moduli)
        test_set = self.inputs.get('test_set')
        record = {
            'potentials': {label: kind_of(p) for label, p in sorted(self.inputs.potentials.items())},
            'notes': self.ctx.notes, 'glass_notes': self.ctx.glass_notes, 'md_cost': md_cost,
            'test_set': f'TrainingSetData<{test_set.pk}> ({test_set.n_frames} frames)' if test_set else None,
            'glasses': sorted(self.inputs.structures) if self.has_structures() else [],
        }  # fmt: skip
        results = tabulate_benchmark(record=orm.Dict(record), index=orm.Dict(index), **parts)
        for name, node in results.items():
            if name.startswith('figure_'):
                self.out(f'figures.{name[len("figure_"):]}', node)
            else:
                self.out(name, node)
        for key in self.ctx.glass_keys:
            node = self.ctx[key]
            if 'cooling_curve_figure' in node.outputs:
                self.out(f'figures.cooling_curve_{key[3:]}', node.outputs.cooling_curve_figure)
        if self.ctx.failed:
            return self.exit_codes.ERROR_STEPS_FAILED.format(details='; '.join(self.ctx.failed))
        return None


def md_cost_of(melt_quench, n_atoms: int) -> float | None:
    """µs per atom-step of a melt-quench: its finished MD jobs' own timers (loop wall time over steps), averaged."""
    costs = []
    for node in melt_quench.called_descendants:
        results = node.outputs.results.get_dict() if node.is_finished_ok and 'results' in node.outputs else {}
        if results.get('wall_time_s') and results.get('n_steps'):
            costs.append(1e6 * float(results['wall_time_s']) / (n_atoms * int(results['n_steps'])))
    return sum(costs) / len(costs) if costs else None


# -- the children's builders (also run once on the inputs by the validator) -------------------------------------------
def _section(settings: dict, name: str) -> tuple[str | None, dict]:
    section = settings.get(name) or {}
    return section.get('protocol'), copy.deepcopy(section.get('overrides') or {})


def engine_of(settings: dict, potential) -> str:
    if isinstance(potential, ClassicalPotentialData):
        return 'lammps'
    if isinstance(potential, MlipPotentialData):
        return 'ase'
    return settings.get('ace_engine') or 'ase'


def _md_code(codes: dict, engine: str):
    role = 'python' if engine == 'ase' else 'lammps'
    if codes.get(role) is None:
        raise BenchmarkInputError(f'engine `{engine}` needs the code `codes.{role}` (register it with `aiida-glassml '
                                  'setup`).')  # fmt: skip
    code = codes[role]
    return code


def melt_quench_builder(settings: dict, codes: dict, potential, structure):
    from aiida_glassml.workflows.melt_quench import MeltQuenchWorkChain

    engine = engine_of(settings, potential)
    protocol, overrides = _section(settings, 'melt_quench')
    return MeltQuenchWorkChain.get_builder_from_protocol(_md_code(codes, engine), structure, potential=potential,
                                                         engine=engine, protocol=protocol, overrides=overrides,
                                                         options=_serial(engine))  # fmt: skip


def analysis_builder(settings: dict, codes: dict, structure):
    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    protocol, overrides = _section(settings, 'analysis')
    return GlassAnalysisWorkChain.get_builder_from_protocol(structure=structure, protocol=protocol,
                                                            overrides=overrides, code=codes['python'])  # fmt: skip


def elastic_builder(settings: dict, codes: dict, potential, structures: dict):
    """The elastic work chain of ``potential`` on ``structures`` (an MLIP runs on its own model file, in ASE)."""
    from aiida_glassml.workflows.elastic import ElasticWorkChain

    engine = engine_of(settings, potential)
    protocol, overrides = _section(settings, 'elastic')
    return ElasticWorkChain.get_builder_from_protocol(_md_code(codes, engine), structures, potential=potential,
                                                     engine=engine, protocol=protocol, overrides=overrides,
                                                     options=_serial(engine))  # fmt: skip


def validate_inputs(inputs, _ctx=None) -> str | None:
    """Something to benchmark, a `python` code, potentials that cover the test set and the structures, and children
    that build from the settings."""
    potentials = dict(inputs.get('potentials') or {})
    if not potentials:
        return 'no potentials: give at least one under `potentials` (label -> ACE, MLIP or classical potential).'
    structures = dict(inputs.get('structures') or {})
    test_set = inputs.get('test_set')
    if test_set is None and not structures:
        return 'nothing to benchmark: give a `test_set` (DFT frames), `structures` (glasses to melt-quench), or both.'
    codes = dict(inputs.get('codes') or {})
    if 'python' not in codes:
        return 'no `codes.python`: give the venv python code (glassml-python, registered by `aiida-glassml setup`).'
    if 'settings' not in inputs:
        return None
    settings = inputs['settings'].get_dict()
    if test_set is not None:
        from aiida_glassml.calculations.evaluate_potential import check_evaluation_inputs

        elements = test_set.base.attributes.get('elements', None) or test_set.get_frameset().elements
        for label, potential in sorted(potentials.items()):
            missing = sorted(set(elements) - set(potential.elements))
            if missing:
                return (f'potential `{label}` has no parameters for {missing} of the test set; give a potential that '
                        'covers every element of the test set, or leave it out.')  # fmt: skip
            if not isinstance(potential, ClassicalPotentialData):
                try:
                    check_evaluation_inputs(potential, test_set, inputs.get('reference_energies'))
                except ValueError as exc:
                    return f'potential `{label}` on the test set: {exc}'
    for name, structure in sorted(structures.items()):
        symbols = sorted({kind.symbol for kind in structure.kinds})
        for label, potential in sorted(potentials.items()):
            missing = sorted(set(symbols) - set(potential.elements))
            if missing:
                return (f'potential `{label}` has no parameters for {missing} of structure `{name}`; give a potential '
                        'that covers every element of the structure, or leave it out.')  # fmt: skip
            try:
                mq = melt_quench_builder(settings, codes, potential, structure)
                error = _check(mq)
                if error:
                    return f'melt-quench of `{name}` with `{label}`: {error}'
            except Exception as exc:  # noqa: BLE001 - any builder error is bad input: say where
                return f'melt-quench of `{name}` with `{label}`: {exc}'
        try:
            analysis_builder(settings, codes, structure)
            if settings.get('elastic') is not None:
                for label, potential in sorted(potentials.items()):
                    error = _check(elastic_builder(settings, codes, potential, {'replica_0': structure}))
                    if error:
                        return f'elastic moduli of `{name}` with `{label}`: {error}'
        except Exception as exc:  # noqa: BLE001
            return f'analysis/elastic settings: {exc}'
    return None


def _check(builder) -> str | None:
    """The checks a child runs on its whole input namespace when it is created."""
    ports = builder._process_class.spec().inputs
    error = ports.validate(ports.pre_process(builder._inputs(prune=True)))
    return None if error is None else str(error)

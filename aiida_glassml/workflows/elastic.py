"""``ElasticWorkChain``: elastic constants and isotropic moduli of glass replicas from strain–stress runs, in ASE
(ACE via pyace, or any ASE calculator) or LAMMPS (classical or ACE), or from single points of strained cells through
``LabelWorkChain`` (engine ``dft``: CP2K, QE, VASP or a teacher potential; clamped ions), with their spread over
replicas and a stress–strain figure. The science is in :mod:`aiida_glassml.analysis.elastic`."""

from __future__ import annotations

import io
import typing as t

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, calcfunction
from aiida.plugins import CalculationFactory, WorkflowFactory

from aiida_glassml.analysis import elastic
from aiida_glassml.calculations.elastic import validate_strain
from aiida_glassml.data.mlip_potential import job_code
from aiida_glassml.protocols import ProtocolMixin
from aiida_glassml.workflows.submit_once import SubmitOnceMixin

ElasticAseCalculation = CalculationFactory('glassml.elastic_ase')
LammpsElasticCalculation = CalculationFactory('glassml.elastic_lammps')
LabelWorkChain = WorkflowFactory('glassml.label')

ENGINES = ('ase', 'lammps', 'dft')
CALCULATIONS = {'ase': ElasticAseCalculation, 'lammps': LammpsElasticCalculation}
#: the exposed namespace of each engine
NAMESPACES = {'ase': 'ase', 'lammps': 'lammps', 'dft': 'label'}


def _tables(stress_strain: t.Mapping[str, orm.ArrayData]) -> dict:
    return {label: {name: node.get_array(name) for name in node.get_arraynames()}
            for label, node in stress_strain.items()}  # fmt: skip


@calcfunction
def analyse_elastic(strain: orm.Dict, **stress_strain: orm.ArrayData) -> orm.Dict:
    """C11, C12, C44, E, G, K and ν of every replica, their mean and spread, R² and non-linearity."""
    tolerance = elastic.StrainProtocol.from_dict(strain.get_dict()).nonlinearity_tolerance
    return orm.Dict(elastic.analyse_replicas(_tables(stress_strain), tolerance))


@calcfunction
def strained_structures(structure: orm.StructureData, strain: orm.Dict) -> dict:
    """The reference and every homogeneously strained cell of ``strain`` (labels of ``elastic.strain_states``); the
    kinds of ``structure`` are kept (e.g. magnetic kinds for DFT)."""
    protocol = elastic.StrainProtocol.from_dict(strain.get_dict())
    atoms = structure.get_ase()
    states = {}
    for label, component, value in elastic.strain_states(protocol):
        states[label] = structure.clone()
        if component != elastic.REFERENCE:
            strained = elastic.strained_atoms(atoms, elastic.COMPONENTS[component], value)
            states[label].reset_cell(np.array(strained.cell).tolist())
            states[label].reset_sites_positions(strained.positions.tolist())
    return states


@calcfunction
def single_point_stress_strain(structure: orm.StructureData, strain: orm.Dict, training_set) -> orm.ArrayData:
    """The stress–strain table of one replica from the labelled single points of its strained cells (attribute
    ``missing_states``: the states without a labelled frame)."""
    from aiida_glassml.parsers.elastic import stress_strain_array

    frames = training_set.get_frameset()
    offsets = frames.offsets
    fmax = [float(np.sqrt((frames.forces[offsets[i]:offsets[i + 1]] ** 2).sum(axis=1)).max())
            for i in range(frames.n_frames)]  # fmt: skip
    stress = np.where(frames.has_stress[:, None], frames.stress, np.nan)
    table, missing = elastic.single_point_table(elastic.StrainProtocol.from_dict(strain.get_dict()),
                                                np.array(structure.cell), frames.cells, stress, frames.energy, fmax)
    node = stress_strain_array(table)
    node.base.attributes.set('missing_states', missing)
    node.base.attributes.set('clamped_ions', True)
    return node


@calcfunction
def plot_stress_strain(**stress_strain: orm.ArrayData) -> orm.SinglefileData:
    """The stress–strain figure (PNG) from the data behind it."""
    return orm.SinglefileData(io.BytesIO(elastic.stress_strain_png(_tables(stress_strain))),
                              filename='stress_strain.png')  # fmt: skip


class ElasticWorkChain(SubmitOnceMixin, ProtocolMixin, WorkChain):
    """One strain–stress CalcJob per replica in ``structures`` (e.g. MeltQuenchWorkChain's ``structures`` output),
    or for engine ``dft`` one ``LabelWorkChain`` of single points on the replica's strained cells (clamped ions),
    then the moduli over the replicas. Protocols: ``elastic.yaml`` (``balanced`` is the study's 20 × 0.01 %; ``dft``
    takes one ±0.5 % step)."""

    _protocol_file = 'elastic'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True,
                             help='Glass replicas (e.g. the `structures` output of MeltQuenchWorkChain).')
        spec.input('engine', valid_type=orm.Str, default=lambda: orm.Str('ase'),
                   help=f'One of {ENGINES}; its inputs go in the namespace of the same name.')
        spec.input('strain', valid_type=orm.Dict, validator=validate_strain,
                   help='StrainProtocol.to_dict() (analysis.elastic).')
        spec.expose_inputs(ElasticAseCalculation, namespace='ase', exclude=('structure', 'strain'),
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'ElasticAseCalculation inputs (engine `ase`).'})  # fmt: skip
        spec.expose_inputs(LammpsElasticCalculation, namespace='lammps', exclude=('structure', 'strain'),
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'LammpsElasticCalculation inputs (engine `lammps`).'})  # fmt: skip
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('structures', 'mode'),
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'LabelWorkChain inputs (engine `dft`: its `engine` cp2k, qe, '
                                                      'vasp or potential, code, settings...); single points.'})  # fmt: skip
        spec.inputs['label'].validator = None  # validate_inputs checks it with the replicas and mode single_point
        spec.inputs.validator = validate_inputs

        spec.outline(cls.setup, cls.run_replicas, cls.inspect_replicas, cls.analyse, cls.results)

        spec.output('moduli', valid_type=orm.Dict,
                    help='C11, C12, C44, E, G, K (GPa) and nu: mean, std over replicas and values; per replica the '
                         'elastic matrix, R² and non-linearity of every component; warnings.')  # fmt: skip
        spec.output('stress_strain_figure', valid_type=orm.SinglefileData, help='PNG of stress vs strain.')
        spec.output_namespace('stress_strain', valid_type=orm.ArrayData, dynamic=True,
                              help='Stress–strain table of each replica.')
        spec.output_namespace('structures', valid_type=orm.StructureData, dynamic=True,
                              help='Minimised reference structure of each replica (engine `dft`: the replica as given).')
        spec.exit_code(300, 'ERROR_ALL_REPLICAS_FAILED', message='no replica finished: {details}')
        spec.exit_code(401, 'ERROR_SOME_REPLICAS_FAILED',
                       message='replica(s) {labels} failed; the moduli come from the others.')

    @classmethod
    def get_builder_from_protocol(cls, code, structures, potential=None, engine: str = 'ase', protocol=None,
                                  overrides=None, calculator: dict | None = None, options: dict | None = None,
                                  settings: dict | None = None, label_engine: str = 'cp2k', label_protocol=None,
                                  label_overrides=None, pseudo_family: str | None = None,
                                  potential_family: str | None = None, **_):  # fmt: skip
        """A builder for ``engine`` from a protocol of ``elastic.yaml``.

        ``code``: the venv python (``glassml-python``) for ``ase``, ``lmp`` for ``lammps``, the labelling code for
        ``dft``. ``structures``: a mapping label → StructureData (MeltQuenchWorkChain's ``structures`` output) or a
        sequence. ``potential``: an AcePotentialData or (ase) an MlipPotentialData, or for LAMMPS a
        ClassicalPotentialData (for ``dft`` with
        ``label_engine='potential'``: the teacher); ``calculator`` (ase only, instead of ``potential``):
        ``{'name': 'module:Class', 'kwargs': {...}}``. Engine ``dft``: the strain is ``strain`` updated with
        ``dft.strain`` (one ±0.5 % step); ``label_engine`` (cp2k, qe, vasp, potential), ``label_protocol``,
        ``label_overrides``, ``pseudo_family``/``potential_family`` go to ``LabelWorkChain.get_builder_from_protocol``.
        """
        if engine not in ENGINES:
            raise ValueError(f'unknown engine {engine!r}; use one of {ENGINES}.')
        inputs = cls.get_protocol_inputs(protocol, overrides)
        strain_inputs = {**inputs['strain'], **inputs['dft']['strain']} if engine == 'dft' else inputs['strain']
        strain = elastic.StrainProtocol.from_dict(strain_inputs)
        if not isinstance(structures, t.Mapping):
            structures = {f'replica_{i}': s for i, s in enumerate(structures)}
        builder = cls.get_builder()
        builder.structures = dict(structures)
        builder.engine = orm.Str(engine)
        builder.strain = orm.Dict(strain.to_dict())
        if engine == 'dft':
            if calculator is not None or settings:
                raise ValueError('`calculator` and `settings` go with engines `ase`/`lammps`; for `dft` give '
                                 '`label_overrides` (the LabelWorkChain settings).')
            label_overrides = dict(label_overrides or {})
            if options:
                label_overrides['options'] = {**label_overrides.get('options', {}), **options}
            label = LabelWorkChain.get_builder_from_protocol(
                code, dict(structures), engine=label_engine, mode='single_point', protocol=label_protocol,
                overrides=label_overrides or None, pseudo_family=pseudo_family, potential_family=potential_family,
                potential=potential)  # fmt: skip
            for name in ('engine', 'code', 'settings', 'pseudo_family', 'potential_family', 'potential'):
                if name in label:
                    builder.label[name] = label[name]
            return builder
        namespace = builder[engine]
        namespace.code = job_code(potential, code)  # an MLIP of another environment runs on its own python
        if potential is not None:
            namespace.potential = potential
        if calculator is not None:
            if engine != 'ase':
                raise ValueError('`calculator` (an ASE calculator) only goes with engine `ase`.')
            namespace.calculator = orm.Dict(calculator)
        if settings:
            namespace.settings = orm.Dict(settings)
        for key, value in (options or {}).items():
            namespace.metadata.options[key] = value
        return builder

    # -- steps ---------------------------------------------------------------------------------------------------------
    def setup(self):
        self.ctx.engine = self.inputs.engine.value
        self.ctx.labels = sorted(self.inputs.structures)
        strain = elastic.StrainProtocol.from_dict(self.inputs.strain.get_dict())
        self.report(f'{len(self.ctx.labels)} replica(s) with engine {self.ctx.engine}: {len(strain.points())} strained '
                    f'states each ({strain.n_steps} x {strain.strain_step:g} each way in {len(strain.components)} '
                    'components)')  # fmt: skip

    def run_replicas(self):
        if self.ctx.engine == 'dft':
            return self.run_single_points()
        process = CALCULATIONS[self.ctx.engine]
        futures = {}
        for label in self.ctx.labels:
            inputs = AttributeDict(self.exposed_inputs(process, self.ctx.engine))
            inputs.structure = self.inputs.structures[label]
            inputs.strain = self.inputs.strain
            inputs.metadata = {**inputs.get('metadata', {}), 'call_link_label': label}
            node = self.submit(process, **inputs)
            self.report(f'launched {label}: {node.process_label}<{node.pk}>')
            futures[label] = node
        return ToContext(**futures)

    def run_single_points(self):
        """One LabelWorkChain (single points) per replica on its reference and strained cells."""
        futures = {}
        for label in self.ctx.labels:
            inputs = AttributeDict(self.exposed_inputs(LabelWorkChain, 'label'))
            inputs.structures = strained_structures(self.inputs.structures[label], self.inputs.strain)
            inputs.mode = orm.Str('single_point')
            inputs.metadata = {'call_link_label': label}
            node = self.submit(LabelWorkChain, **inputs)
            self.report(f'launched {label}: LabelWorkChain<{node.pk}> ({inputs.engine.value}) for '
                        f'{len(inputs.structures)} single points (clamped ions)')  # fmt: skip
            futures[label] = node
        return ToContext(**futures)

    def inspect_single_points(self):
        self.ctx.tables = {}
        strain = elastic.StrainProtocol.from_dict(self.inputs.strain.get_dict())
        for label in self.ctx.labels:
            node = self.ctx[label]
            if not node.is_finished_ok or 'training_set' not in node.outputs:
                self.ctx.failed.append(label)
                self.report(f'{label}: LabelWorkChain<{node.pk}> failed ({node.exit_status}): {node.exit_message}')
                continue
            table = single_point_stress_strain(self.inputs.structures[label], self.inputs.strain,
                                               node.outputs.training_set)  # fmt: skip
            missing = table.base.attributes.get('missing_states')
            if missing:
                self.report(f'{label}: no labelled frame for {missing}')
            problem = elastic.table_problem({name: table.get_array(name) for name in table.get_arraynames()}, strain)
            if problem:
                self.ctx.failed.append(label)
                self.report(f'{label}: the single points give no elastic constants: {problem}')
                continue
            self.ctx.tables[label] = table
            self.ctx.finished.append(label)
        if not self.ctx.finished:
            return self.exit_codes.ERROR_ALL_REPLICAS_FAILED.format(details=', '.join(self.ctx.failed))
        return None

    def inspect_replicas(self):
        self.ctx.finished, self.ctx.failed = [], []
        if self.ctx.engine == 'dft':
            return self.inspect_single_points()
        self.ctx.tables = {}
        for label in self.ctx.labels:
            node = self.ctx[label]
            if node.is_finished_ok:
                self.ctx.tables[label] = node.outputs.stress_strain
                self.ctx.finished.append(label)
                results = node.outputs.results
                if results['n_unconverged']:
                    self.report(f'{label}: {results["n_unconverged"]} of {results["n_points"]} minimisations stopped '
                                f'above ftol (largest force {results["max_fmax"]:.2g} eV/Å)')  # fmt: skip
            else:
                self.ctx.failed.append(label)
                self.report(f'{label} failed with exit status {node.exit_status}: {node.exit_message}')
        if not self.ctx.finished:
            return self.exit_codes.ERROR_ALL_REPLICAS_FAILED.format(details=', '.join(self.ctx.failed))
        return None

    def analyse(self):
        tables = {label: self.ctx.tables[label] for label in self.ctx.finished}
        self.ctx.moduli = analyse_elastic(self.inputs.strain, **tables)
        self.ctx.figure = plot_stress_strain(**tables)
        moduli = self.ctx.moduli.get_dict()

        def show(name, unit=' GPa', digits=1):
            value = moduli[name]
            spread = f' ± {value["std"]:.{digits}f}' if value['std'] is not None else ''
            return f'{name} = {value["mean"]:.{digits}f}{spread}{unit}'

        self.report(', '.join([show(n) for n in ('C11', 'C12', 'C44', 'E', 'G', 'K')] + [show('nu', '', 3)]) +
                    f' over {len(self.ctx.finished)} replica(s)')  # fmt: skip
        for warning in moduli['warnings']:
            self.logger.warning(warning)
            self.report(f'WARNING: {warning}')

    def results(self):
        for label in self.ctx.finished:
            self.out(f'stress_strain.{label}', self.ctx.tables[label])
            reference = self.inputs.structures[label] if self.ctx.engine == 'dft' else self.ctx[label].outputs.structure
            self.out(f'structures.{label}', reference)
        self.out('moduli', self.ctx.moduli)
        self.out('stress_strain_figure', self.ctx.figure)
        if self.ctx.failed:
            return self.exit_codes.ERROR_SOME_REPLICAS_FAILED.format(labels=', '.join(self.ctx.failed))
        return None


def validate_inputs(inputs, _ctx=None) -> str | None:
    """Engine inputs present, at least one replica, and every replica valid for the engine (the potential covers
    its elements) before anything is stored."""
    engine = inputs['engine'].value if 'engine' in inputs else 'ase'
    if engine not in ENGINES:
        return f'unknown engine {engine!r}; use one of {ENGINES}.'
    namespace = inputs.get(NAMESPACES[engine])
    if not namespace:
        return f'engine `{engine}` needs its inputs in the `{NAMESPACES[engine]}` namespace (code, potential, ...).'
    structures = inputs.get('structures') or {}
    if not structures:
        return '`structures` is empty; give at least one glass replica (e.g. MeltQuenchWorkChain `structures`).'
    if 'strain' not in inputs:
        return None
    if engine == 'dft':
        from aiida_glassml.workflows.label import validate_inputs as validate_label

        # the replicas stand in for their strained cells: same elements
        message = validate_label({**namespace, 'structures': dict(structures), 'mode': orm.Str('single_point')},
                                 LabelWorkChain.spec().inputs)  # fmt: skip
        return f'label: {message}' if message else None
    for label, structure in sorted(structures.items()):
        message = CALCULATIONS[engine].validate_inputs({**namespace, 'structure': structure, 'strain': inputs['strain']})
        if message:
            return f'replica {label}: {message}'
    return None

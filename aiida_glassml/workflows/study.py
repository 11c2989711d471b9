"""``GlassStudyWorkChain`` (``glassml.study``): a whole glass study from a recipe, every stage fed by the one before.

compositions -> random structures -> initial DFT dataset -> first fit and batch active learning (or a given potential)
-> production melt-quench (per composition and potential) -> structure analysis, elastic moduli, diffusion series and
the hybrid DFT MD (in parallel) -> summary Dict, table and figures.

The recipe (:mod:`aiida_glassml.common.recipe`) is stored as the ``recipe`` input; each child's builder is made from it
by :class:`StudyPlanner` with the previous stage's outputs, so the potential that makes the glasses is the one fitted to
the labels this study made. :func:`build_study` runs the same planner on stand-ins first (a dry run of every stage), so
a recipe that cannot run is refused, naming its line, before anything is stored.
"""

from __future__ import annotations

import copy
import typing as t

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.engine import ToContext, WorkChain, if_

from aiida_glassml.common.recipe import Recipe, RecipeError, glass_compositions, read_recipe, study_elements
from aiida_glassml.data import AcePotentialData, TrainingSetData
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.data.mlip_potential import MlipError, MlipPotentialData
from aiida_glassml.workflows.submit_once import SubmitOnceMixin

#: stages in the order they run, for progress reports (``study status``)
STAGES = ('initial_dataset', 'active_learning', 'glasses', 'properties', 'summary', 'done')
MAIN = 'main'
POTENTIAL_TYPES = (AcePotentialData, ClassicalPotentialData, MlipPotentialData)
#: what each code role is needed for; a missing code is an error only when its stage runs
DEFAULT_CODES = {'dft': None, 'python': 'glassml-python', 'pacemaker': 'pacemaker', 'lammps': 'lammps'}
LABEL_ENGINE_CODES = {'cp2k': 'cp2k', 'qe': 'pw', 'vasp': 'vasp'}


# -- resolving the recipe against the profile --------------------------------------------------------------------------
def _load_code(recipe: Recipe, role: str, given: dict) -> orm.AbstractCode:
    if role in given:
        return given[role]
    label = (recipe.data.get('codes') or {}).get(role)
    if label is None:
        label = LABEL_ENGINE_CODES[recipe.data['labels'].get('engine', 'cp2k')] if role == 'dft' else DEFAULT_CODES[role]
    try:
        return orm.load_code(label)
    except (NotExistent, MultipleObjectsError, ValueError):
        install = {'cp2k': 'install CP2K (`sudo apt-get install cp2k cp2k-data`) and run `aiida-glassml setup`',
                   'pw': 'install Quantum ESPRESSO (`sudo apt-get install quantum-espresso`) and run '
                         '`aiida-glassml setup`'}.get(label.split('@')[0], 'run `aiida-glassml setup` or `verdi code create`')  # fmt: skip
        raise recipe.error(('codes', role), f'code {label!r} ({role}) is not registered in this profile; {install}, '
                                            f'or name another code under `codes: {role}:`.') from None  # fmt: skip


def calculator_of(spec: dict) -> dict | None:
    """The ``calculator`` input (``{name, kwargs}``) of a recipe potential naming an ASE calculator or a shipped MLIP
    (loaded from the installed weights by :func:`aiida_glassml.common.mlip.shipped_calculator`), else None."""
    if 'mlip' in spec:
        return {'name': 'aiida_glassml.common.mlip:shipped_calculator',
                'kwargs': {'family': spec['mlip'], **dict(spec.get('kwargs') or {})}}  # fmt: skip
    if 'calculator' not in spec:
        return None
    return {'name': spec['calculator'], 'kwargs': dict(spec.get('kwargs') or {})}


def _shipped_mlip(recipe: Recipe, path: tuple, spec: dict) -> MlipPotentialData:
    """The (unstored) node of ``{mlip: chgnet|sevennet, kwargs: {...}}``: loads the shipped weights once."""
    try:
        return getattr(MlipPotentialData, spec['mlip'])(**(spec.get('kwargs') or {}))
    except MlipError as exc:
        raise recipe.error(path + ('kwargs',), f'{spec["mlip"]}: {exc}') from None


def resolve_potential(recipe: Recipe, path: tuple, spec: dict, elements: t.Sequence[str], store: bool = False):
    """``(node, calculator, engine)`` of a recipe potential; checks that it covers the study's elements. A shipped
    MLIP (``mlip: chgnet``) is loaded once here (weights present, elements covered): its node is what the benchmark
    evaluates, its ASE ``calculator`` what runs the MD. A bare ``calculator:`` has no node."""
    if 'calculator' in spec:
        return None, calculator_of(spec), spec.get('engine', 'ase')
    if 'mlip' in spec:
        node = _shipped_mlip(recipe, path, spec)
    elif 'classical' in spec:
        try:
            node = ClassicalPotentialData.from_library(spec['classical'], **(spec.get('kwargs') or {}))
        except Exception as exc:  # noqa: BLE001 - the library's own message says what is wrong
            raise recipe.error(path + ('kwargs',), f'classical potential {spec["classical"]!r}: {exc}') from None
        engine = 'lammps'
    else:
        identifier = spec.get('ace', spec.get('node'))
        where = path + (('ace',) if 'ace' in spec else ('node',))
        if isinstance(identifier, str) and identifier.endswith(('.yaml', '.yml')):
            asi = recipe.resolve_path(spec['asi']) if spec.get('asi') else None
            node = AcePotentialData.get_or_create(recipe.resolve_path(identifier), asi=asi, store=store)
        else:
            try:
                node = orm.load_node(identifier)
            except (NotExistent, MultipleObjectsError, ValueError):
                raise recipe.error(where, f'no node {identifier!r} in this profile; give a PK/UUID of a stored '
                                          'potential or the path of a pacemaker yaml.') from None  # fmt: skip
            if isinstance(node, MlipPotentialData):
                raise recipe.error(where, f'node {identifier!r} is an MlipPotentialData; a study takes the shipped '
                                          'MLIPs as {mlip: chgnet} or {mlip: sevennet, kwargs: {model: 7net-0}}.')  # fmt: skip
            if not isinstance(node, (AcePotentialData, ClassicalPotentialData)):
                raise recipe.error(where, f'node {identifier!r} is a {type(node).__name__}, not a potential.')
        engine = 'lammps' if isinstance(node, ClassicalPotentialData) else None
    missing = sorted(set(elements) - set(node.elements))
    if missing:
        covers = node.elements if len(node.elements) <= 12 else f'{len(node.elements)} elements'
        raise recipe.error(path, f'the potential (elements {covers}) lacks {missing} of the study\'s '
                                 f'elements {list(elements)}; choose a potential that covers them or drop those '
                                 'compositions.')  # fmt: skip
    if isinstance(node, MlipPotentialData):
        return (node.store() if store else node), calculator_of(spec), 'ase'
    return node, None, spec.get('engine') or engine


def resolve_test_set(recipe: Recipe) -> TrainingSetData | None:
    """The recipe's ``benchmark.test_set``: a file of DFT frames (unstored: :func:`build_study` stores it after the dry
    run, reusing a stored copy with the same frames) or a stored TrainingSetData; None when not given."""
    from aiida_glassml.common.recipe import is_node_identifier

    identifier = (recipe.data.get('benchmark') or {}).get('test_set')
    if identifier is None:
        return None
    path = ('benchmark', 'test_set')
    if is_node_identifier(identifier):
        try:
            node = orm.load_node(identifier)
        except (NotExistent, MultipleObjectsError, ValueError):
            raise recipe.error(path, f'no node {identifier!r} in this profile; give a PK/UUID of a stored '
                                     'TrainingSetData or the path of a file of DFT frames.') from None  # fmt: skip
        if not isinstance(node, TrainingSetData):
            raise recipe.error(path, f'node {identifier!r} is a {type(node).__name__}, not a TrainingSetData.')
        return node
    file = recipe.resolve_path(identifier)
    try:
        node = TrainingSetData.from_file(file)
    except Exception as exc:  # noqa: BLE001 - the reader's message says what is wrong with the file
        raise recipe.error(path, f'cannot read DFT frames from {file}: {exc}; give an extxyz or a pacemaker '
                                 'pickle with energies and forces.') from None  # fmt: skip
    return node


def _overrides(section: dict | None) -> dict:
    return copy.deepcopy((section or {}).get('overrides') or {})


def _protocol(section: dict | None, default: str | None = None) -> str | None:
    return (section or {}).get('protocol') or default


class StudyPlanner:
    """Builds each stage's process builder from the recipe; used by the work chain and by the dry run."""

    def __init__(self, recipe: Recipe, codes: dict[str, orm.AbstractCode]):
        self.recipe = recipe
        self.codes = codes
        self.data = recipe.data

    def code(self, role: str) -> orm.AbstractCode:
        return _load_code(self.recipe, role, self.codes)

    def _call(self, path: tuple, build: t.Callable, *args, **kwargs):
        """Run a builder factory; any error it raises is reported at the recipe line of ``path``."""
        try:
            return build(*args, **kwargs)
        except RecipeError:
            raise
        except Exception as exc:  # noqa: BLE001 - every builder error becomes a recipe error with its line
            raise self.recipe.error(path, f'{exc}') from None

    def _label_kwargs(self) -> dict:
        labels = self.data['labels']
        return {'engine': labels.get('engine', 'cp2k'), 'pseudo_family': labels.get('pseudo_family'),
                'potential_family': labels.get('potential_family')}  # fmt: skip

    def _with_labels(self, section: dict) -> dict:
        """The section's overrides with the recipe's `labels` protocol and overrides as their label settings (the
        section's own label overrides win), so every stage labels at one level of theory."""
        labels = self.data['labels']
        overrides = _overrides(section)
        if labels.get('protocol'):
            overrides.setdefault('label_protocol', labels['protocol'])
        if labels.get('overrides'):
            overrides['label'] = {**copy.deepcopy(labels['overrides']), **overrides.get('label', {})}
        return overrides

    def initial_dataset(self):
        from aiida_glassml.workflows.initial_dataset import InitialDatasetWorkChain

        section = self.data['initial_dataset']
        overrides = self._with_labels(section)
        return self._call(('initial_dataset',), InitialDatasetWorkChain.get_builder_from_protocol, self.code('dft'),
                          compositions=copy.deepcopy(self.data['compositions']), protocol=_protocol(section),
                          overrides=overrides, **self._label_kwargs())  # fmt: skip

    def active_learning(self, dataset: TrainingSetData):
        from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain

        section = self.data['active_learning']
        overrides = self._with_labels(section)
        engine = section.get('engine') or 'ase'
        md_code = self.code('python' if engine == 'ase' else 'lammps')
        kwargs = self._label_kwargs()
        return self._call(('active_learning',), ActiveLearningWorkChain.get_builder_from_protocol, dataset,
                          compositions=copy.deepcopy(self.data['compositions']), md_code=md_code,
                          label_code=self.code('dft'), pacemaker_code=self.code('pacemaker'),
                          label_engine=kwargs['engine'], protocol=_protocol(section), overrides=overrides,
                          engine=engine, pseudo_family=kwargs['pseudo_family'],
                          potential_family=kwargs['potential_family'])  # fmt: skip

    def engine_for(self, label: str, engine: str | None, potential) -> str:
        if engine:
            return engine
        if isinstance(potential, ClassicalPotentialData):
            return 'lammps'
        if label == MAIN:
            return self.data['glasses'].get('engine') or 'ase'
        return 'ase'

    def _md_code(self, engine: str) -> orm.AbstractCode:
        return self.code('python' if engine == 'ase' else 'lammps')

    def melt_quench(self, label: str, structure, potential=None, calculator=None, engine=None):
        from aiida_glassml.workflows.melt_quench import MeltQuenchWorkChain

        section = self.data['glasses']
        potential = _md_potential(potential, calculator)
        engine = self.engine_for(label, engine, potential)
        path = ('glasses',) if label == MAIN else ('comparison', label)
        return self._call(path, MeltQuenchWorkChain.get_builder_from_protocol, self._md_code(engine), structure,
                          potential=potential, engine=engine, protocol=_protocol(section), overrides=_overrides(section),
                          calculator=calculator, options=_serial(engine))  # fmt: skip

    def analysis(self, structure, experimental=None):
        from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

        section = self.data['analysis']
        return self._call(('analysis',), GlassAnalysisWorkChain.get_builder_from_protocol, structure=structure,
                          protocol=_protocol(section), overrides=_overrides(section), experimental=experimental,
                          code=self.code('python'))  # fmt: skip

    def elastic(self, structures: dict, potential=None, calculator=None, engine=None):
        from aiida_glassml.workflows.elastic import ElasticWorkChain

        section = self.data['elastic']
        potential = _md_potential(potential, calculator)
        engine = section.get('engine') or self.engine_for(MAIN, engine, potential)
        code = self.code('dft') if engine == 'dft' else self._md_code(engine)
        kwargs = self._label_kwargs()
        return self._call(('elastic',), ElasticWorkChain.get_builder_from_protocol, code, structures,
                          potential=potential, engine=engine, protocol=_protocol(section), overrides=_overrides(section),
                          calculator=calculator, options=_serial(engine), label_engine=kwargs['engine'],
                          label_protocol=self.data['labels'].get('protocol'),
                          label_overrides=self.data['labels'].get('overrides'),
                          pseudo_family=kwargs['pseudo_family'], potential_family=kwargs['potential_family'])  # fmt: skip

    def diffusion(self, structures: dict, potential=None, engine=None):
        from aiida_glassml.workflows.diffusion import DiffusionWorkChain

        section = self.data['diffusion']
        engine = section.get('engine') or self.engine_for(MAIN, engine, potential)
        overrides = _overrides(section)
        if section.get('temperatures') is not None:
            overrides['temperatures'] = [float(value) for value in section['temperatures']]
        kwargs = {'analysis_code': self.code('python')} if engine == 'lammps' else {}
        return self._call(('diffusion',), DiffusionWorkChain.get_builder_from_protocol, self._md_code(engine),
                          structures, potential=potential, engine=engine, protocol=_protocol(section),
                          overrides=overrides, options=_serial(engine), **kwargs)  # fmt: skip

    def benchmark(self, potentials: dict, test_set: TrainingSetData):
        from aiida_glassml.workflows.benchmark import PotentialBenchmarkWorkChain

        section = self.data['benchmark']
        return self._call(('benchmark',), PotentialBenchmarkWorkChain.get_builder_from_protocol, self.code('python'),
                          potentials, test_set=test_set, reference_energies=section.get('reference_energies'),
                          protocol=_protocol(section), overrides=_overrides(section))  # fmt: skip

    def hybrid(self, structures: dict):
        from aiida_glassml.workflows.label import LabelWorkChain

        section = self.data['hybrid']
        kwargs = self._label_kwargs()
        return self._call(('hybrid',), LabelWorkChain.get_builder_from_protocol, self.code('dft'), structures,
                          engine=kwargs['engine'], mode='aimd', protocol=_protocol(section, 'fast'),
                          overrides=_overrides(section) or None)  # fmt: skip


def _md_potential(potential, calculator):
    """The node an MD stage gets: none when an ASE calculator runs it (a shipped MLIP's node is for the benchmark)."""
    return None if calculator is not None else potential


def benchmark_potentials(potentials: t.Mapping[str, tuple]) -> tuple[dict, dict]:
    """``label -> node`` of the potentials the benchmark evaluates, and ``label -> why`` of the bare ASE calculators
    it cannot (they have no node). A potential with neither (the main one in a dry run, not fitted yet) is left out."""
    nodes, skipped = {}, {}
    for label, (node, calculator, _) in potentials.items():
        if node is not None:
            nodes[label] = node
        elif calculator is not None:
            skipped[label] = ('an ASE calculator without a potential node: name it as {mlip: ...} or give a stored '
                              'potential to get its errors on DFT frames')  # fmt: skip
    return nodes, skipped


def _failure(node) -> str:
    return f'{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message}'


def _serial(engine: str) -> dict | None:
    # the LAMMPS here has no MPI launcher; a cluster's options come through the recipe's overrides
    return {'withmpi': False} if engine == 'lammps' else None


# -- stand-ins for the dry run ---------------------------------------------------------------------------------------
def _stand_in_structure(composition: dict, settings: dict | None = None, seed: int = 1) -> orm.StructureData:
    """An unstored random packing as the study would make it (its settings), but small: the smallest cell that
    realises the composition."""
    from aiida_glassml.calcfunctions.structures import _structure_node
    from aiida_glassml.structures import StructureGenerationError, generate_random_structure

    settings = {k: v for k, v in (settings or {}).items() if k not in ('n_atoms', 'cell')}
    for n_atoms in (40, 120, 400):
        try:
            return _structure_node(generate_random_structure(composition, seed, {**settings, 'n_atoms': n_atoms}))
        except StructureGenerationError:
            continue
    return _structure_node(generate_random_structure(composition, seed, {**settings, 'n_atoms': 1000}))


def _stand_in_dataset(planner: StudyPlanner, builder, structures: list[orm.StructureData]) -> TrainingSetData:
    """A TrainingSetData of one frame per structure, at the level of theory the initial dataset's labels will have."""
    import numpy as np
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_glassml.common.frames import FrameSet
    from aiida_glassml.workflows.label import level_of_theory_for

    frames = []
    for structure in structures:
        atoms = structure.get_ase()
        atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=np.zeros((len(atoms), 3)))
        frames.append(atoms)
    label = builder.label
    family = label.get('pseudo_family') or label.get('potential_family')
    try:
        level = level_of_theory_for(label['engine'].value, label['settings'].get_dict(), structures, label['code'],
                                    family=family.value if family else None)  # fmt: skip
    except Exception:  # noqa: BLE001 - unknown here means unknown at run time too; the loop checks it again
        level = None
    return TrainingSetData(FrameSet.from_atoms(frames), level_of_theory=level)


def plan_study(recipe: Recipe, codes: dict | None = None, test_set: TrainingSetData | None = None) -> dict:
    """Dry run: build every process builder of every stage on stand-ins; returns {stage: builder or {label: builder}}.
    Raises RecipeError naming the recipe line of the first problem. Stores nothing. ``test_set``: the recipe's
    ``benchmark.test_set`` when the caller has read it already."""
    planner = StudyPlanner(recipe, dict(codes or {}))
    data = recipe.data
    elements = study_elements(recipe)
    builders: dict[str, t.Any] = {}
    settings = data['glasses'].get('structure') or {}
    structures = {label: _stand_in_structure(c, settings) for label, c in glass_compositions(recipe).items()}
    first = next(iter(structures.values()))
    main_potential, main_calculator, main_engine = None, None, None
    if recipe.trains:
        builders['initial_dataset'] = planner.initial_dataset()
        training = [_stand_in_structure(c) for c in data['compositions'].values()]
        dataset = _stand_in_dataset(planner, builders['initial_dataset'], training)
        builders['active_learning'] = planner.active_learning(dataset)
    else:
        main_potential, main_calculator, main_engine = resolve_potential(recipe, ('potential',), data['potential'],
                                                                         elements)  # fmt: skip
    potentials = {MAIN: (main_potential, main_calculator, main_engine)}
    for label, spec in (data.get('comparison') or {}).items():
        potentials[label] = resolve_potential(recipe, ('comparison', label), spec, elements)
    builders['glasses'] = {
        f'{label}_{name}': planner.melt_quench(label, structure, potential, calculator, engine)
        for label, (potential, calculator, engine) in potentials.items() for name, structure in structures.items()
    }  # fmt: skip
    builders['analysis'] = planner.analysis(first)
    if data.get('elastic') is not None:
        builders['elastic'] = planner.elastic({'replica_0': first}, main_potential, main_calculator, main_engine)
    if data.get('diffusion') is not None:
        if main_calculator is not None:
            raise recipe.error(('diffusion',), 'the diffusion series runs with an ACE or classical potential, not an '
                                               'ASE calculator; set `diffusion: null` or give another potential.')  # fmt: skip
        builders['diffusion'] = planner.diffusion({'replica_0': first}, main_potential, main_engine)
    if data.get('hybrid') is not None:
        builders['hybrid'] = planner.hybrid({'glass': first})
    if data.get('benchmark') is not None:
        # the active learning's held-out frames do not exist yet: the initial dataset's stand-ins take their place
        if test_set is None:
            test_set = resolve_test_set(recipe) or (dataset if recipe.trains else None)
        nodes, _ = benchmark_potentials(potentials)
        if nodes and test_set is not None:
            builders['benchmark'] = planner.benchmark(nodes, test_set)
    for stage, built in builders.items():
        for builder in built.values() if isinstance(built, dict) else [built]:
            _validate_builder(recipe, stage, builder, filled=recipe.trains)
    return builders


def _validate_builder(recipe: Recipe, stage: str, builder, filled: bool) -> None:
    """The checks a process runs on its whole input namespace when it is created (e.g. Arrhenius temperatures against
    the series), run here so they fail before submission. A port the study fills at run time (the potential it is
    about to fit) may be missing in the dry run."""
    ports = builder._process_class.spec().inputs
    error = ports.validate(ports.pre_process(builder._inputs(prune=True)))  # with the port defaults, as at creation
    if error is None:
        return
    message = str(error)
    unfilled = ('required value was not provided', 'got neither', 'got none')  # the ports' words for "no potential"
    if filled and stage in ('glasses', 'elastic', 'diffusion') and 'potential' in message and any(
            words in message for words in unfilled):  # fmt: skip
        return
    raise recipe.error((stage,), f'{builder._process_class.__name__}: {message}')  # the stage is its recipe section


def build_study(recipe: Recipe | str, codes: dict | None = None, experimental=None):
    """A ``GlassStudyWorkChain`` builder from a recipe (path or :class:`Recipe`), after a dry run of every stage."""
    if not isinstance(recipe, Recipe):
        recipe = read_recipe(recipe)
    test_set = resolve_test_set(recipe)  # read once: the dry run checks it, the study gets it stored
    plan_study(recipe, codes, test_set=test_set)
    planner = StudyPlanner(recipe, dict(codes or {}))
    data = recipe.data
    elements = study_elements(recipe)
    builder = GlassStudyWorkChain.get_builder()
    builder.metadata.label = data['study']
    builder.metadata.description = (data.get('description') or '')[:255]
    builder.recipe = orm.Dict({'source': recipe.source, 'recipe': data,
                               'lines': [[list(path), line] for path, line in recipe.lines.items()]})  # fmt: skip
    roles = ['python']
    if recipe.trains or data.get('hybrid') is not None or (data.get('elastic') or {}).get('engine') == 'dft':
        roles.append('dft')
    if recipe.trains:
        roles.append('pacemaker')
    engines = {planner.engine_for(MAIN, (data.get('potential') or {}).get('engine'), None)}
    for section in ('elastic', 'diffusion', 'active_learning'):
        engines.add((data.get(section) or {}).get('engine'))
    for spec in (data.get('comparison') or {}).values():
        engines.add(spec.get('engine') or ('lammps' if 'classical' in spec else None))
    if data.get('potential') and 'classical' in data['potential']:
        engines.add('lammps')
    if 'lammps' in engines:
        roles.append('lammps')
    builder.codes = {role: planner.code(role) for role in roles}
    potentials = {}
    if not recipe.trains:
        node, _, _ = resolve_potential(recipe, ('potential',), data['potential'], elements, store=True)
        if node is not None:
            potentials[MAIN] = node
    for label, spec in (data.get('comparison') or {}).items():
        node, _, _ = resolve_potential(recipe, ('comparison', label), spec, elements, store=True)
        if node is not None:
            potentials[label] = node
    builder.potentials = potentials
    if test_set is not None:
        builder.test_set = test_set if test_set.is_stored else (test_set.find_stored() or test_set.store())
    experimental_spec = data['analysis'].get('experimental')
    if experimental is None and experimental_spec is not None:
        experimental = read_experimental(recipe)
    if experimental is not None:
        builder.experimental = experimental
    return builder


def read_experimental(recipe: Recipe) -> orm.XyData:
    """The recipe's X-ray/neutron curve (two columns: Q or r, and the measured quantity) as an XyData."""
    import numpy as np

    from aiida_glassml.calcfunctions.analysis_structure import experimental_curve_node

    spec = recipe.data['analysis']['experimental']
    path = recipe.resolve_path(spec['path'])
    try:
        table = np.loadtxt(path, comments='#', ndmin=2)
    except (OSError, ValueError) as exc:
        raise recipe.error(('analysis', 'experimental', 'path'), f'cannot read {path}: {exc}; give a two-column '
                                                                 'text file.') from None  # fmt: skip
    return experimental_curve_node(table[:, 0], table[:, 1], spec.get('quantity', 'S_xray'), spec.get('source'))


def recipe_from_node(node: orm.Dict) -> Recipe:
    content = node.get_dict()
    return Recipe(data=content['recipe'], lines={tuple(path): line for path, line in content['lines']},
                  source=content['source'])  # fmt: skip


# -- the work chain -------------------------------------------------------------------------------------------------------
class GlassStudyWorkChain(SubmitOnceMixin, WorkChain):
    """A glass study from a recipe: training (or a given potential), glasses, analysis, properties, summary."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('recipe', valid_type=orm.Dict, help='The validated recipe: source, content and line of each key.')
        spec.input_namespace('codes', valid_type=orm.AbstractCode, dynamic=True,
                             help='Codes by role: dft, python, pacemaker, lammps.')
        spec.input_namespace('potentials', valid_type=POTENTIAL_TYPES, dynamic=True, required=False,
                             help='Given potentials: `main` (skips training) and comparison labels.')
        spec.input('test_set', valid_type=TrainingSetData, required=False,
                   help='DFT frames for the benchmark (recipe `benchmark.test_set`); default: the active learning\'s '
                        'held-out frames.')  # fmt: skip
        spec.input('experimental', valid_type=orm.XyData, required=False, help='Measured curve for R_chi.')
        spec.outline(
            cls.setup,
            if_(cls.trains)(
                cls.run_initial_dataset, cls.inspect_initial_dataset,
                cls.run_active_learning, cls.inspect_active_learning,
            ),
            cls.run_glasses, cls.inspect_glasses,
            cls.run_properties, cls.inspect_properties,
            cls.summarise,
        )  # fmt: skip
        spec.output('summary', valid_type=orm.Dict, help='Every stage: process PKs, counts and key results.')
        spec.output('summary_table', valid_type=orm.SinglefileData, help='One row per potential and composition (md).')
        spec.output_namespace('figures', valid_type=orm.SinglefileData, dynamic=True, help='PNG figures of the study.')
        spec.output('potential', valid_type=POTENTIAL_TYPES, required=False,
                    help='The potential that made the glasses (fitted by this study unless given).')
        spec.output('training_set', valid_type=TrainingSetData, required=False, help='Frames the potential was fitted on.')
        spec.output_namespace('glasses', valid_type=orm.StructureData, dynamic=True,
                              help='Quenched glasses: <potential>_<composition>_<replica>.')
        spec.exit_code(310, 'ERROR_INITIAL_DATASET_FAILED', message='the initial dataset failed: {details}')
        spec.exit_code(311, 'ERROR_ACTIVE_LEARNING_FAILED', message='active learning failed: {details}')
        spec.exit_code(312, 'ERROR_GLASSES_FAILED', message='no glass was made: {details}')
        spec.exit_code(313, 'ERROR_STAGE_FAILED', message='stage(s) failed: {details} (the other results are kept)')

    # -- helpers ---------------------------------------------------------------------------------------------------
    @property
    def recipe(self) -> Recipe:
        return recipe_from_node(self.inputs.recipe)

    def planner(self) -> StudyPlanner:
        return StudyPlanner(self.recipe, dict(self.inputs.codes))

    def set_stage(self, stage: str) -> None:
        self.node.base.extras.set('study_stage', stage)
        self.report(f'stage: {stage}')

    def _submit(self, builder, label: str):
        builder.metadata.call_link_label = label
        return self.submit(builder)

    # -- steps ---------------------------------------------------------------------------------------------------------
    def setup(self):
        self.ctx.summary = {'study': self.recipe.data['study'], 'stages': {}, 'failed': []}
        self.ctx.potential = self.inputs.potentials.get(MAIN) if 'potentials' in self.inputs else None
        self.ctx.training_set = None

    def trains(self):
        return self.recipe.trains

    def run_initial_dataset(self):
        self.set_stage('initial_dataset')
        node = self._submit(self.planner().initial_dataset(), 'initial_dataset')
        return ToContext(initial_dataset=node)

    def inspect_initial_dataset(self):
        node = self.ctx.initial_dataset
        if not node.is_finished_ok or 'training_set' not in node.outputs:
            return self.exit_codes.ERROR_INITIAL_DATASET_FAILED.format(
                details=_failure(node))
        dataset = node.outputs.training_set
        self.ctx.summary['stages']['initial_dataset'] = {'pk': node.pk, 'frames': dataset.n_frames,
                                                         'structures': len(node.outputs.structures)}  # fmt: skip
        self.report(f'initial dataset: {dataset.n_frames} frames, TrainingSetData<{dataset.pk}>')
        return None

    def run_active_learning(self):
        self.set_stage('active_learning')
        builder = self.planner().active_learning(self.ctx.initial_dataset.outputs.training_set)
        node = self._submit(builder, 'active_learning')
        return ToContext(active_learning=node)

    def inspect_active_learning(self):
        node = self.ctx.active_learning
        # max_iterations (401) still leaves a usable potential: the study goes on with it and says so
        if 'potential' not in node.outputs or not (node.is_finished_ok or node.exit_status == 401):
            return self.exit_codes.ERROR_ACTIVE_LEARNING_FAILED.format(
                details=_failure(node))
        report = node.outputs.report.get_dict()
        self.ctx.potential = node.outputs.potential
        self.ctx.training_set = node.outputs.train_set
        last = (report.get('rows') or [{}])[-1]
        self.ctx.summary['stages']['active_learning'] = {
            'pk': node.pk, 'exit_status': node.exit_status, 'stop_reason': (report.get('stop') or {}).get('stop_reason'),
            'iterations': len(node.outputs.iterations), 'training_frames': self.ctx.training_set.n_frames,
            'test_force_rmse': last.get('test_force_rmse'), 'test_energy_rmse': last.get('test_energy_rmse'),
        }  # fmt: skip
        self.report(f'active learning: {len(node.outputs.iterations)} iteration(s), stop reason '
                    f'{(report.get("stop") or {}).get("stop_reason")}, potential '
                    f'AcePotentialData<{self.ctx.potential.pk}>')  # fmt: skip
        return None

    def _potentials(self) -> dict:
        """label -> (node, calculator, engine) of every potential that makes glasses."""
        recipe = self.recipe
        data = recipe.data
        given = dict(self.inputs.potentials) if 'potentials' in self.inputs else {}
        main_spec = data.get('potential') or {}
        potentials = {MAIN: (self.ctx.potential, calculator_of(main_spec), main_spec.get('engine'))}
        for label, spec in (data.get('comparison') or {}).items():
            potentials[label] = (given.get(label), calculator_of(spec), spec.get('engine'))
        return potentials

    def run_glasses(self):
        from aiida_glassml.calcfunctions.structures import random_structure

        self.set_stage('glasses')
        glasses = self.recipe.data['glasses']
        planner = self.planner()
        starts = {}
        for name, composition in glass_compositions(self.recipe).items():
            settings = copy.deepcopy(glasses.get('structure') or {})
            starts[name] = random_structure(orm.Dict(composition), orm.Int(glasses.get('seed', 1)), orm.Dict(settings))
        self.ctx.starts = starts
        futures = {}
        for label, (potential, calculator, engine) in self._potentials().items():
            for name, structure in starts.items():
                builder = planner.melt_quench(label, structure, potential, calculator, engine)
                key = f'{label}_{name}'
                futures[f'mq_{key}'] = self._submit(builder, f'melt_quench_{key}')
                self.report(f'melt-quench {key}: {builder.engine.value}, {len(structure.sites)} atoms, '
                            f'{len(builder.seeds.get_list())} replica(s)')  # fmt: skip
        return ToContext(**futures)

    def inspect_glasses(self):
        self.ctx.glasses = {}
        made = {}
        for key in sorted(k for k in self.ctx if k.startswith('mq_')):
            node = self.ctx[key]
            label = key[3:]
            if not node.is_finished_ok:
                self.ctx.summary['failed'].append(f'melt_quench {label}: {node.process_label}<{node.pk}> exit '
                                                  f'{node.exit_status}')  # fmt: skip
                continue
            self.ctx.glasses[label] = dict(node.outputs.structures)
            for replica, structure in node.outputs.structures.items():
                self.out(f'glasses.{label}_{replica}', structure)
            made[label] = {'pk': node.pk, 'densities': node.outputs.densities.get_dict(),
                           'tg': node.outputs.tg.get_dict().get('tg')}  # fmt: skip
        self.ctx.summary['stages']['glasses'] = made
        main = [k for k in self.ctx.glasses if k.startswith(f'{MAIN}_')]
        if not main:
            return self.exit_codes.ERROR_GLASSES_FAILED.format(details='; '.join(self.ctx.summary['failed']))
        return None

    def run_properties(self):
        self.set_stage('properties')
        data = self.recipe.data
        planner = self.planner()
        potentials = self._potentials()
        experimental = self.inputs.get('experimental')
        futures = {}
        for key, replicas in self.ctx.glasses.items():
            first = replicas[sorted(replicas)[0]]
            futures[f'analysis_{key}'] = self._submit(planner.analysis(first, experimental), f'analysis_{key}')
        potential, calculator, engine = potentials[MAIN]
        for key, replicas in self.ctx.glasses.items():
            if not key.startswith(f'{MAIN}_'):
                continue
            if data.get('elastic') is not None:
                futures[f'elastic_{key}'] = self._submit(planner.elastic(replicas, potential, calculator, engine),
                                                         f'elastic_{key}')  # fmt: skip
            if data.get('diffusion') is not None:
                futures[f'diffusion_{key}'] = self._submit(planner.diffusion(replicas, potential, engine),
                                                           f'diffusion_{key}')  # fmt: skip
            if data.get('hybrid') is not None:
                futures[f'hybrid_{key}'] = self._submit(planner.hybrid(replicas), f'hybrid_{key}')
        if data.get('benchmark') is not None:
            test_set = self.inputs.get('test_set')
            if test_set is None and 'active_learning' in self.ctx:
                test_set = self.ctx.active_learning.outputs.test_set
            nodes, skipped = benchmark_potentials(potentials)
            self.ctx.summary['benchmark_skipped'] = skipped
            if nodes and test_set is not None:
                futures['benchmark_test_set'] = self._submit(planner.benchmark(nodes, test_set), 'benchmark')
                self.report(f'benchmark: {", ".join(sorted(nodes))} on TrainingSetData<{test_set.pk}> '
                            f'({test_set.n_frames} frames)')  # fmt: skip
        self.ctx.property_keys = sorted(futures)
        return ToContext(**futures)

    def inspect_properties(self):
        stages = self.ctx.summary['stages']
        for key in self.ctx.property_keys:
            node = self.ctx[key]
            stage, label = key.split('_', 1)
            entry = {'pk': node.pk, 'exit_status': node.exit_status}
            stages.setdefault(stage, {})[label] = entry
            if not node.is_finished_ok:
                self.ctx.summary['failed'].append(f'{stage} {label}: {_failure(node)}')

    def summarise(self):
        from aiida_glassml.calcfunctions.study import summarise_study

        self.set_stage('summary')
        parts, index = {}, {}

        def add(stage: str, key: str, name: str, node) -> None:
            link = f'part_{len(parts)}'
            parts[link] = node
            index[link] = [stage, key, name]

        for key in sorted(k for k in self.ctx if k.startswith('mq_')):
            node = self.ctx[key]
            if node.is_finished_ok:
                add('glasses', key[3:], 'densities', node.outputs.densities)
                add('glasses', key[3:], 'tg', node.outputs.tg)
        for key in self.ctx.property_keys:
            node = self.ctx[key]
            stage, label = key.split('_', 1)
            if stage == 'analysis' and 'structure' in node.outputs:
                for name in ('results', 'rdf', 'structure_factor'):
                    if name in node.outputs.structure:
                        add(stage, label, name, node.outputs.structure[name])
            elif stage == 'elastic' and 'moduli' in node.outputs:
                add(stage, label, 'moduli', node.outputs.moduli)
            elif stage == 'diffusion':
                for name in ('arrhenius', 'conductivity'):
                    if name in node.outputs:
                        add(stage, label, name, node.outputs[name])
            elif stage == 'hybrid' and 'training_set' in node.outputs:
                add(stage, label, 'training_set', node.outputs.training_set)
            elif stage == 'benchmark' and 'metrics_table' in node.outputs:
                add(stage, label, 'metrics_table', node.outputs.metrics_table)
        results = summarise_study(study=orm.Dict(self.ctx.summary), index=orm.Dict(index), **parts)
        self.out('summary', results['summary'])
        self.out('summary_table', results['table'])
        figures = {name: node for name, node in results.items() if name.startswith('figure_')}
        for name, node in figures.items():
            self.out(f'figures.{name[len("figure_"):]}', node)
        self._collect_figures()
        if self.ctx.potential is not None:
            self.out('potential', self.ctx.potential)
        if self.ctx.training_set is not None:
            self.out('training_set', self.ctx.training_set)
        self.set_stage('done')
        if self.ctx.summary['failed']:
            return self.exit_codes.ERROR_STAGE_FAILED.format(details='; '.join(self.ctx.summary['failed']))
        return None

    def _collect_figures(self) -> None:
        """The stages' own figures, under one namespace, so `study show` lists every figure of the study."""
        if 'active_learning' in self.ctx and 'figure' in self.ctx.active_learning.outputs:
            self.out('figures.active_learning', self.ctx.active_learning.outputs.figure)
        for key in sorted(k for k in self.ctx if k.startswith('mq_')):
            node = self.ctx[key]
            if node.is_finished_ok:
                self.out(f'figures.cooling_curve_{key[3:]}', node.outputs.cooling_curve_figure)
        for key in self.ctx.property_keys:
            node = self.ctx[key]
            stage, label = key.split('_', 1)
            if stage == 'analysis' and 'structure' in node.outputs:
                for name in ('rdf_figure', 'structure_factor_figure'):
                    if name in node.outputs.structure:
                        self.out(f'figures.{name[:-7]}_{label}', node.outputs.structure[name])
            elif stage == 'elastic' and 'stress_strain_figure' in node.outputs:
                self.out(f'figures.stress_strain_{label}', node.outputs.stress_strain_figure)
            elif stage == 'diffusion' and 'figures' in node.outputs:
                for name, figure in node.outputs.figures.items():
                    self.out(f'figures.diffusion_{name}_{label}', figure)

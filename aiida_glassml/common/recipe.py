"""Study recipes: the YAML file that says what a ``GlassStudyWorkChain`` does, read with the line of every key.

Plain Python (no AiiDA): parsing, the schema, and the checks that need no database. Every error names the recipe file
and line and says how to fix it. Checks that need the profile (codes, stored potentials) are in
:mod:`aiida_glassml.workflows.study`, which reuses :meth:`Recipe.where` for the same one-line messages.

A recipe::

    study: demo                       # name of the study (the work chain's label)
    description: ...                  # what it reproduces and what it costs (free text)
    compositions:                     # training space: label -> {units, fractions[, oxidation_states]}
      NaPO3: {units: [Na2O, P2O5], fractions: [0.5, 0.5]}
    codes: {dft: cp2k@localhost, python: glassml-python@localhost, pacemaker: pacemaker@localhost}
    labels: {engine: cp2k, protocol: fast}         # the level of theory of every DFT label
    initial_dataset: {protocol: fast}              # InitialDatasetWorkChain
    active_learning: {protocol: fast}              # ActiveLearningWorkChain (fits first)
    potential: null                   # or a given potential, which skips initial_dataset and active_learning
    glasses: {compositions: [NaPO3], structure: {n_atoms: 60}, engine: ase, protocol: fast}
    analysis: {protocol: fast}
    elastic: {engine: ase, protocol: fast}         # null: skipped
    diffusion: {engine: ase, protocol: fast, temperatures: [1500, 2000]}   # null: skipped
    comparison: {teter: {classical: teter}}        # the same glasses and analysis with other potentials
    benchmark: {test_set: test.pckl.gzip}          # every potential's errors on DFT frames; default: with a comparison,
                                                   # on the active learning's held-out frames (null: skipped)
    hybrid: null                      # {protocol, overrides}: short DFT MD of the quenched glasses (labels.engine)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pathlib
import re
import typing as t

import yaml

#: top-level keys and what each holds
TOP_LEVEL_KEYS = {
    'study': 'name of the study',
    'description': 'what the study reproduces and what it costs',
    'compositions': 'training space: label -> {units, fractions[, oxidation_states]}',
    'codes': 'role -> code label',
    'labels': 'the labelling engine and protocol (the level of theory)',
    'initial_dataset': 'InitialDatasetWorkChain protocol and overrides',
    'active_learning': 'ActiveLearningWorkChain protocol, overrides and engine',
    'potential': 'a given potential instead of training one',
    'glasses': 'production melt-quench: compositions, start structure, engine, protocol',
    'analysis': 'GlassAnalysisWorkChain protocol, overrides, experimental data',
    'elastic': 'ElasticWorkChain engine, protocol, overrides (null: skipped)',
    'diffusion': 'DiffusionWorkChain engine, protocol, temperatures, overrides (null: skipped)',
    'comparison': 'label -> potential: the same glasses and analysis with other potentials',
    'benchmark': 'every potential on DFT frames (PotentialBenchmarkWorkChain): test_set, reference_energies, protocol',
    'hybrid': 'short DFT MD of the quenched glasses (null: skipped)',
}
CODE_ROLES = {
    'dft': 'the labelling code (cp2k, pw.x or vasp)',
    'python': 'the venv python (glassml-python): ASE MD, analysis',
    'pacemaker': 'pacemaker (pace_yaml2yace, pace_activeset, pace_select on its computer)',
    'lammps': 'LAMMPS (lmp); with ML-PACE for ACE in LAMMPS',
}
SECTION_KEYS = {
    'labels': ('engine', 'protocol', 'overrides', 'pseudo_family', 'potential_family'),
    'initial_dataset': ('protocol', 'overrides'),
    'active_learning': ('protocol', 'overrides', 'engine'),
    'glasses': ('compositions', 'structure', 'seed', 'engine', 'protocol', 'overrides'),
    'analysis': ('protocol', 'overrides', 'experimental'),
    'elastic': ('engine', 'protocol', 'overrides'),
    'diffusion': ('engine', 'protocol', 'temperatures', 'overrides'),
    'hybrid': ('protocol', 'overrides'),
    'benchmark': ('test_set', 'reference_energies', 'protocol', 'overrides'),
}
#: ways to name a potential (``potential`` and each ``comparison`` entry) and the keys each allows
POTENTIAL_KINDS = {
    'ace': ('ace', 'asi', 'engine'),  # a pacemaker yaml file (relative to the recipe) or a stored node (PK/UUID)
    'classical': ('classical', 'kwargs', 'engine'),  # a library potential: teter, bmp, du
    'calculator': ('calculator', 'kwargs', 'engine'),  # any ASE calculator, 'module:Class'
    'mlip': ('mlip', 'kwargs', 'engine'),  # a universal MLIP shipped in its package: chgnet, sevennet (ASE)
    'node': ('node', 'engine'),  # a stored AcePotentialData or ClassicalPotentialData
}
LABEL_ENGINES = ('cp2k', 'qe', 'vasp')
MD_ENGINES = ('ase', 'lammps')
ELASTIC_ENGINES = ('ase', 'lammps', 'dft')
PROTOCOLS = ('fast', 'balanced', 'stringent')
EXPERIMENTAL_KEYS = ('path', 'quantity', 'source')


#: composition and comparison labels become link labels of the study's outputs
LABEL_PATTERN = re.compile(r'^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$')


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file, the line and the fix."""


@dataclasses.dataclass
class Recipe:
    """A validated recipe: ``data`` (the parsed YAML with defaults filled in) and the line of every key."""

    data: dict
    lines: dict[tuple, int]
    source: str

    def where(self, *path) -> str:
        """``file:line`` of the deepest key of ``path`` that the file has (the section when a key is a default)."""
        for depth in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:depth]))
            if line is not None:
                return f'{self.source}:{line}'
        return self.source

    def error(self, path: t.Sequence, message: str) -> RecipeError:
        key = '.'.join(map(str, path))
        return RecipeError(f'{self.where(*path)}: `{key}`: {message}' if key else f'{self.where()}: {message}')

    @property
    def trains(self) -> bool:
        """Whether the study makes its own potential (no ``potential`` given)."""
        return self.data.get('potential') is None

    def section(self, name: str) -> dict | None:
        value = self.data.get(name)
        return copy.deepcopy(value) if value is not None else None

    @property
    def base_dir(self) -> pathlib.Path:
        path = pathlib.Path(self.source)
        return path.parent if path.suffix in ('.yaml', '.yml') else pathlib.Path.cwd()

    def resolve_path(self, value: str) -> pathlib.Path:
        path = pathlib.Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()


# -- reading with line numbers ---------------------------------------------------------------------------------------
def _compose_lines(node: yaml.Node, path: tuple, lines: dict) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _compose_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _compose_lines(item, path + (index,), lines)


def read_recipe(source: str | pathlib.Path, text: str | None = None) -> Recipe:
    """Read a recipe file (or ``text``, reported as ``source``) and validate it."""
    source = str(source)
    if text is None:
        path = pathlib.Path(source)
        if not path.is_file():
            raise RecipeError(f'{source}: no such recipe file; give the path of a study YAML (see workflows/*.yaml).')
        text = path.read_text(encoding='utf-8')
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        line = f':{mark.line + 1}' if mark is not None else ''
        raise RecipeError(f'{source}{line}: not valid YAML ({getattr(exc, "problem", exc)}); fix the syntax.') from None
    if not isinstance(data, dict):
        raise RecipeError(f'{source}: a recipe is a YAML mapping with keys {sorted(TOP_LEVEL_KEYS)}.')
    lines: dict[tuple, int] = {}
    _compose_lines(root, (), lines)
    recipe = Recipe(data=data, lines=lines, source=source)
    validate_recipe(recipe)
    return recipe


# -- validation -------------------------------------------------------------------------------------------------------
def _check_keys(recipe: Recipe, path: tuple, value, known: t.Iterable[str]) -> None:
    known = list(known)
    if not isinstance(value, dict):
        raise recipe.error(path, f'expected a mapping with keys {known}, got {type(value).__name__} {value!r}.')
    for key in value:
        if key not in known:
            raise recipe.error(path + (key,), f'unknown key {key!r}; known keys here: {", ".join(known)}.')


def _check_label(recipe: Recipe, path: tuple, label) -> None:
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        raise recipe.error(path, f'label {label!r} must be letters and digits (single underscores allowed), starting '
                                 'with a letter, e.g. NaPO3 or x1_5.')  # fmt: skip


def _check_choice(recipe: Recipe, path: tuple, value, choices: t.Sequence[str]) -> None:
    if value not in choices:
        raise recipe.error(path, f'{value!r} is not one of {", ".join(choices)}.')


def _label_protocols(engine: str) -> tuple[str, ...]:
    """Protocols of a labelling engine: fast/balanced/stringent and the presets named after a study (CP2K's
    ``nafepo4_aimd``, ``nvp_thesis``)."""
    from aiida_glassml.protocols import load_protocol_file

    if engine not in LABEL_ENGINES:
        return PROTOCOLS
    return tuple(load_protocol_file(f'label_{engine}')['protocols'])


def _check_stage(recipe: Recipe, name: str, engines: t.Sequence[str] | None = None,
                 protocols: t.Sequence[str] = PROTOCOLS) -> None:  # fmt: skip
    section = recipe.data.get(name)
    if section is None:
        return
    _check_keys(recipe, (name,), section, SECTION_KEYS[name])
    if section.get('protocol') is not None:
        _check_choice(recipe, (name, 'protocol'), section['protocol'], protocols)
    if engines and section.get('engine') is not None:
        _check_choice(recipe, (name, 'engine'), section['engine'], engines)
    overrides = section.get('overrides')
    if overrides is not None and not isinstance(overrides, dict):
        raise recipe.error((name, 'overrides'), 'overrides are a mapping of protocol keys (see the protocol YAML).')
    _check_temperatures(recipe, (name, 'overrides'), overrides or {})


#: override keys that are temperatures (K) in the MD protocols
TEMPERATURE_KEYS = ('t_low', 't_high', 't_end', 'temperature', 'temperatures')


def _check_temperatures(recipe: Recipe, path: tuple, value) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TEMPERATURE_KEYS:
                _check_positive(recipe, path + (key,), item)
            else:
                _check_temperatures(recipe, path + (key,), item)


def _check_positive(recipe: Recipe, path: tuple, value) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)) and not value:
        raise recipe.error(path, 'no temperatures given; list at least one, in K, e.g. [1000, 1500].')
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) or item <= 0:
            raise recipe.error(path, f'temperatures are positive numbers in K, got {item!r}.')


def _check_composition(recipe: Recipe, path: tuple, value) -> None:
    from aiida_glassml.structures import Composition, StructureGenerationError

    if not isinstance(value, dict):
        raise recipe.error(path, 'a composition is {units: [Na2O, P2O5], fractions: [0.5, 0.5]}.')
    unknown = sorted(set(value) - {'units', 'fractions', 'oxidation_states'})
    if unknown:
        raise recipe.error(path + (unknown[0],), f'unknown key {unknown[0]!r}; a composition has units, fractions '
                                                 'and optionally oxidation_states.')  # fmt: skip
    try:
        Composition.from_units(value.get('units'), value.get('fractions'), value.get('oxidation_states'))
    except StructureGenerationError as exc:
        raise recipe.error(path, str(exc)) from None


def _check_potential(recipe: Recipe, path: tuple, value, engines: t.Sequence[str] = MD_ENGINES) -> None:
    if not isinstance(value, dict):
        raise recipe.error(path, f'name a potential with one of {sorted(POTENTIAL_KINDS)}, e.g. {{classical: teter}} '
                                 'or {ace: potential.yaml}.')  # fmt: skip
    kinds = [kind for kind in POTENTIAL_KINDS if kind in value]
    if len(kinds) != 1:
        raise recipe.error(path, f'give exactly one of {sorted(POTENTIAL_KINDS)}, got {sorted(value)}.')
    kind = kinds[0]
    _check_keys(recipe, path, value, POTENTIAL_KINDS[kind])
    if value.get('engine') is not None:
        _check_choice(recipe, path + ('engine',), value['engine'], engines)
    if kind == 'classical':
        from aiida_glassml.md.potentials import LIBRARY

        _check_choice(recipe, path + ('classical',), value['classical'], sorted(LIBRARY))
        if value.get('engine', 'lammps') != 'lammps':
            raise recipe.error(path + ('engine',), 'classical potentials run in LAMMPS; set engine: lammps.')
    if kind == 'calculator':
        name = value['calculator']
        if not isinstance(name, str) or ':' not in name:
            raise recipe.error(path + ('calculator',), f'give the ASE calculator as "module:Class", got {name!r}.')
        if value.get('engine', 'ase') != 'ase':
            raise recipe.error(path + ('engine',), 'an ASE calculator runs in ASE; set engine: ase.')
    if kind == 'mlip':
        _check_mlip(recipe, path, value)
    if kind == 'ace' and isinstance(value['ace'], str) and value['ace'].endswith(('.yaml', '.yml')):
        if not recipe.resolve_path(value['ace']).is_file():
            raise recipe.error(path + ('ace',), f'no file {recipe.resolve_path(value["ace"])}; give the pacemaker '
                                                'yaml of the potential (relative to the recipe) or a node PK/UUID.')  # fmt: skip


def _check_mlip(recipe: Recipe, path: tuple, value: dict) -> None:
    """``{mlip: chgnet}`` or ``{mlip: sevennet, kwargs: {model: 7net-0}}``: a shipped model, run in ASE."""
    from aiida_glassml.common import mlip

    _check_choice(recipe, path + ('mlip',), value['mlip'], sorted(mlip.SHIPPED))
    kwargs = value.get('kwargs') or {}
    _check_keys(recipe, path + ('kwargs',), kwargs, ('model', 'device', 'device_fallback')
                + (('modal',) if value['mlip'] == 'sevennet' else ()))  # fmt: skip
    try:
        mlip.check_modal(mlip.shipped_model(value['mlip'], kwargs.get('model')), kwargs.get('modal'))
    except mlip.MlipError as exc:
        raise recipe.error(path + ('kwargs',), str(exc)) from None
    if value.get('engine', 'ase') != 'ase':
        raise recipe.error(path + ('engine',), 'an MLIP runs through its ASE calculator; set engine: ase.')


def validate_recipe(recipe: Recipe) -> None:
    """Every check that needs no database; raises RecipeError naming the line."""
    data = recipe.data
    _check_keys(recipe, (), data, TOP_LEVEL_KEYS)
    if not isinstance(data.get('study'), str) or not data['study'].strip():
        raise recipe.error(('study',), 'give the study a name, e.g. `study: nafepo4`.')
    compositions = data.get('compositions')
    if not isinstance(compositions, dict) or not compositions:
        raise recipe.error(('compositions',), 'give at least one composition: {label: {units: [...], fractions: [...]}}.')
    for label, composition in compositions.items():
        _check_label(recipe, ('compositions', label), label)
        _check_composition(recipe, ('compositions', label), composition)
    codes = data.get('codes') or {}
    _check_keys(recipe, ('codes',), codes, CODE_ROLES)
    for role, label in codes.items():
        if not isinstance(label, str) or not label:
            raise recipe.error(('codes', role), f'give the code label, e.g. `{role}: name@computer`.')

    labels = data.setdefault('labels', {'engine': 'cp2k'})
    _check_stage(recipe, 'labels', protocols=_label_protocols(labels.get('engine', 'cp2k')))
    _check_choice(recipe, ('labels', 'engine'), labels.get('engine', 'cp2k'), LABEL_ENGINES)
    for name in ('initial_dataset', 'active_learning'):
        data.setdefault(name, {})
    _check_stage(recipe, 'initial_dataset')
    _check_stage(recipe, 'active_learning', MD_ENGINES)
    if data.get('potential') is not None:
        _check_potential(recipe, ('potential',), data['potential'])

    glasses = data.setdefault('glasses', {})
    _check_stage(recipe, 'glasses', MD_ENGINES)
    chosen = glasses.get('compositions')
    if chosen is not None:
        if not isinstance(chosen, list) or not chosen:
            raise recipe.error(('glasses', 'compositions'), f'list composition labels, e.g. [{next(iter(compositions))}].')
        for index, label in enumerate(chosen):
            if label not in compositions:
                raise recipe.error(('glasses', 'compositions', index),
                                   f'{label!r} is not one of the compositions {sorted(compositions)}.')  # fmt: skip
    seed = glasses.get('seed', 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 1:
        raise recipe.error(('glasses', 'seed'), f'the seed is a positive integer, got {seed!r}.')
    if glasses.get('structure') is not None:
        from aiida_glassml.structures.generate import validate_settings

        try:
            validate_settings(glasses['structure'])
        except ValueError as exc:
            raise recipe.error(('glasses', 'structure'), str(exc)) from None

    data.setdefault('analysis', {})
    _check_stage(recipe, 'analysis')
    experimental = data['analysis'].get('experimental')
    if experimental is not None:
        _check_keys(recipe, ('analysis', 'experimental'), experimental, EXPERIMENTAL_KEYS)
        if 'path' not in experimental:
            raise recipe.error(('analysis', 'experimental'), 'give `path` of the two-column X-ray/neutron file.')
    _check_stage(recipe, 'elastic', ELASTIC_ENGINES)
    _check_stage(recipe, 'diffusion', MD_ENGINES)
    diffusion = data.get('diffusion')
    if diffusion is not None and diffusion.get('temperatures') is not None:
        _check_positive(recipe, ('diffusion', 'temperatures'), diffusion['temperatures'])
    comparison = data.get('comparison') or {}
    if not isinstance(comparison, dict):
        raise recipe.error(('comparison',), 'comparison is a mapping label -> potential, e.g. {teter: {classical: teter}}.')
    for label, potential in comparison.items():
        if label == 'main':
            raise recipe.error(('comparison', label), '`main` names the study\'s own potential; choose another label.')
        if not isinstance(label, str) or not re.match(r'^[A-Za-z][A-Za-z0-9]*$', label):
            raise recipe.error(('comparison', label), f'potential label {label!r} must be letters and digits only '
                                                      '(it leads each glass key, <potential>_<composition>).')  # fmt: skip
        _check_potential(recipe, ('comparison', label), potential)
    _check_benchmark(recipe)
    _check_stage(recipe, 'hybrid', protocols=_label_protocols('cp2k'))
    if data.get('hybrid') is not None and labels.get('engine', 'cp2k') != 'cp2k':
        raise recipe.error(('hybrid',), 'the hybrid DFT MD runs in CP2K (as in the thesis); set labels.engine: cp2k.')
    if data.get('hybrid') is not None and not data['hybrid'].get('protocol'):
        data['hybrid']['protocol'] = 'fast'


def _check_benchmark(recipe: Recipe) -> None:
    """``benchmark``: absent runs it when there is a comparison and held-out frames; a study with a given potential
    has no held-out frames of its own, so an explicit section there needs ``test_set``."""
    data = recipe.data
    if 'benchmark' not in data:
        if data.get('comparison') and recipe.trains:
            data['benchmark'] = {}
        return
    _check_stage(recipe, 'benchmark')
    section = data['benchmark']
    if section is None:
        return
    test_set = section.get('test_set')
    if test_set is None and not recipe.trains:
        raise recipe.error(('benchmark',), 'a study with a given potential holds out no DFT frames: give '
                                           '`test_set` (an extxyz or pacemaker pickle of DFT frames, or the PK/UUID of '
                                           'a stored TrainingSetData), or set `benchmark: null`.')  # fmt: skip
    if isinstance(test_set, bool) or not isinstance(test_set, (str, int, type(None))):
        raise recipe.error(('benchmark', 'test_set'), f'give a file of DFT frames or a TrainingSetData PK/UUID, got '
                                                      f'{test_set!r}.')  # fmt: skip
    if isinstance(test_set, str) and not is_node_identifier(test_set) and not recipe.resolve_path(test_set).is_file():
        raise recipe.error(('benchmark', 'test_set'), f'no file {recipe.resolve_path(test_set)}; give the path of the '
                                                      'DFT frames (relative to the recipe).')  # fmt: skip
    energies = section.get('reference_energies')
    if energies is not None:
        if not isinstance(energies, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in energies.values()):  # fmt: skip
            raise recipe.error(('benchmark', 'reference_energies'), 'give element -> energy in eV, e.g. '
                                                                    '{Na: -1.2, P: -5.4, O: -4.9}.')  # fmt: skip
        missing = sorted(set(study_elements(recipe)) - set(energies))
        if missing:
            raise recipe.error(('benchmark', 'reference_energies'), f'no reference energy for {missing}; give one per '
                                                                    'element of the study.')  # fmt: skip


def is_node_identifier(value) -> bool:
    """A PK or a (possibly shortened) UUID rather than a file name."""
    return isinstance(value, int) or bool(re.fullmatch(r'\d+|[0-9a-f]{8}(-[0-9a-f-]*)?', str(value)))


def study_elements(recipe: Recipe) -> list[str]:
    """Every element of the study's compositions."""
    from aiida_glassml.structures import Composition

    symbols: set[str] = set()
    for composition in recipe.data['compositions'].values():
        parsed = Composition.from_units(composition['units'], composition['fractions'],
                                        composition.get('oxidation_states'))  # fmt: skip
        symbols.update(parsed.element_amounts)
    return sorted(symbols)


def glass_compositions(recipe: Recipe) -> dict[str, dict]:
    """label -> composition of the production glasses (default: every composition)."""
    compositions = recipe.data['compositions']
    chosen = recipe.data['glasses'].get('compositions') or list(compositions)
    return {label: copy.deepcopy(compositions[label]) for label in chosen}

"""Batch active learning as one AiiDA process: ``ActiveLearningWorkChain`` (``glassml.active_learning``) runs
``ActiveLearningIterationWorkChain`` (``glassml.active_learning.iteration``) until a stop criterion holds.

One iteration: fresh random structures at the training compositions and strains -> MD with the current potential
tracking gamma (ASE/pyace or LAMMPS pace/extrapolation) -> the candidate frames of every run -> D-optimal selection
(``PaceSelectCalculation``) -> labels (``LabelWorkChain``, any engine) -> merged training set -> up-fit
(``FitAceWorkChain``, new active set) -> test metrics on the fixed held-out set -> stability run at 5000 K -> report.
Every step is a process and every artefact a node, so each DFT calculation is reachable from the potential it went into.
With the ``force_deviation`` selector a committee of ACE potentials (members fitted on their own seeded subsets of the
training set) explores instead, tracking σ_F,max; the frames with sigma_lo < σ_F,max < sigma_hi are selected, most
uncertain first (``select_committee_frames``), and every member is up-fitted. The decisions live in
:mod:`aiida_glassml.fitting.active_learning`.
"""

from __future__ import annotations

import copy
import dataclasses

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida.plugins import CalculationFactory, WorkflowFactory

from aiida_glassml.calcfunctions import active_learning as bookkeeping
from aiida_glassml.calcfunctions.committee import check_candidates as check_committee_candidates
from aiida_glassml.calcfunctions.committee import select_committee_frames
from aiida_glassml.calculations.evaluate_potential import EvaluatePotentialCalculation, evaluation_builder
from aiida_glassml.calcfunctions.structures import random_structure, strained_copies
from aiida_glassml.calcfunctions.training_set import append_training_set
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting import active_learning as al
from aiida_glassml.md.protocol import MDProtocol, MDProtocolError, exploration, stability_test
from aiida_glassml.protocols import ProtocolError, ProtocolMixin
from aiida_glassml.workflows.fit_ace import FitAceWorkChain, split_training_set
from aiida_glassml.workflows.label import LabelWorkChain
from aiida_glassml.workflows.submit_once import SubmitOnceMixin

AseMDCalculation = CalculationFactory('glassml.ase_md')
PaceSelectCalculation = CalculationFactory('glassml.pace_select')
LammpsMDBaseWorkChain = WorkflowFactory('glassml.lammps_md_base')

ENGINES = ('ase', 'lammps')
EXPLORATION_KEYS = ('packings_per_composition', 'strains', 'structure_settings', 'trajectory_frames', 'md')
STABILITY_KEYS = ('enabled', 'composition', 'structure_settings', 'md')


# -- validation (before anything is stored) ------------------------------------------------------------------------------
def exploration_protocol(exploration_settings: dict, seed: int = 1, selector: str = 'gamma') -> MDProtocol:
    return exploration(**exploration_settings['md'], seed=int(seed), tracking=selector)


def stability_protocol(stability_settings: dict, exploration_settings: dict, seed: int = 1,
                       selector: str = 'gamma') -> MDProtocol:  # fmt: skip
    md = exploration_settings['md']
    window = {key: md[key] for key in ('sigma_lo', 'sigma_hi') if key in md}
    return stability_test(**stability_settings['md'], gamma_lo=md['gamma_lo'], gamma_hi=md['gamma_hi'], seed=int(seed),
                          tracking=selector, **window)  # fmt: skip


def sigma_window(exploration_settings: dict) -> tuple[float, float]:
    """(sigma_lo, sigma_hi) of the exploration, eV/Å (defaults 1 and 5)."""
    md = exploration_settings.get('md', {})
    return md.get('sigma_lo', 1.0), md.get('sigma_hi', 5.0)


def check_committee_potentials(committee, symbols) -> None:
    """A starting committee the loop can refit: ACE members of one element set covering the compositions."""
    from aiida_glassml.calculations.ase_md import check_committee_inputs

    not_ace = sorted(label for label, member in committee.items() if not isinstance(member, AcePotentialData))
    if not_ace:
        raise al.ActiveLearningError(f'committee members {not_ace} are not ACE potentials; the loop refits every '
                                     'member with pacemaker, so give AcePotentialData members.')  # fmt: skip
    problem = check_committee_inputs(committee)
    if problem:
        raise al.ActiveLearningError(problem)
    missing = sorted(symbols - set(next(iter(committee.values())).elements))
    if missing:
        raise al.ActiveLearningError(f'the exploration compositions contain {missing}, which the committee does not '
                                     'have; fit its members on data with every element, or drop those compositions.')  # fmt: skip


def composition_symbols(compositions: dict) -> set[str]:
    from aiida_glassml.structures.composition import Composition

    symbols: set[str] = set()
    for label, composition in compositions.items():
        composition = dict(composition)
        try:
            parsed = Composition.from_units(composition.get('units'), composition.get('fractions'),
                                            composition.get('oxidation_states'))  # fmt: skip
        except ValueError as exc:
            raise al.ActiveLearningError(f'exploration composition `{label}`: {exc}') from exc
        symbols.update(parsed.element_amounts)
    return symbols


def check_loop_inputs(inputs) -> None:
    """Every check that needs several inputs; raises ActiveLearningError (or the engine's own error) naming the fix."""
    settings = al.validate_loop_settings(inputs['settings'].get_dict() if 'settings' in inputs else None)
    explore = inputs['exploration'].get_dict()
    unknown = sorted(set(explore) - set(EXPLORATION_KEYS))
    if unknown:
        raise al.ActiveLearningError(f'unknown `exploration` key(s) {unknown}; known: {list(EXPLORATION_KEYS)}.')
    md = explore.get('md', {})
    al.check_gamma_window(md.get('gamma_lo'), md.get('gamma_hi'))
    selector = settings['selector']
    if selector == 'force_deviation':
        al.check_sigma_window(*sigma_window(explore))
    try:
        exploration_protocol(explore, selector=selector)
    except (MDProtocolError, TypeError) as exc:
        raise al.ActiveLearningError(f'`exploration.md`: {exc}') from exc
    packings = explore.get('packings_per_composition', 1)
    if not al._is_int(packings) or packings < 1:
        raise al.ActiveLearningError(f'`exploration.packings_per_composition` must be ≥ 1, got {packings!r}.')
    if explore.get('strains'):
        from aiida_glassml.structures.packing import validate_strain_factors

        try:
            validate_strain_factors(explore['strains'])
        except ValueError as exc:
            raise al.ActiveLearningError(f'`exploration.strains`: {exc}') from exc
    stability = inputs['stability'].get_dict() if 'stability' in inputs else {'enabled': False}
    unknown = sorted(set(stability) - set(STABILITY_KEYS))
    if unknown:
        raise al.ActiveLearningError(f'unknown `stability` key(s) {unknown}; known: {list(STABILITY_KEYS)}.')
    compositions = inputs['compositions'].get_dict()
    if not compositions:
        raise al.ActiveLearningError('`compositions` is empty: give {label: {"units": [...], "fractions": [...]}}.')
    symbols = composition_symbols(compositions)
    if stability.get('enabled'):
        if stability.get('composition') is not None and stability['composition'] not in compositions:
            raise al.ActiveLearningError(f'`stability.composition` {stability["composition"]!r} is not one of the '
                                         f'exploration compositions {sorted(compositions)}.')  # fmt: skip
        try:
            stability_protocol(stability, explore, selector=selector)
        except (MDProtocolError, TypeError) as exc:
            raise al.ActiveLearningError(f'`stability.md`: {exc}') from exc
    potential = inputs.get('potential')
    committee = dict(inputs.get('committee') or {})
    if selector == 'gamma' and committee:
        raise al.ActiveLearningError('a `committee` is explored only with `settings.selector: force_deviation`; set it, '
                                     'or give one `potential` for the gamma selector.')  # fmt: skip
    if selector == 'force_deviation':
        if potential is not None:
            raise al.ActiveLearningError('the force_deviation selector explores with a committee: give `committee` (two '
                                         'or more ACE potentials) instead of `potential`, or neither to fit one first.')  # fmt: skip
        if committee:
            check_committee_potentials(committee, symbols)
    if potential is not None:
        missing = sorted(symbols - set(potential.elements))
        if missing:
            raise al.ActiveLearningError(
                f'the exploration compositions contain {missing}, which the potential (elements {potential.elements}) '
                'does not have; fit a potential on data with every element, or drop those compositions.'
            )
        if not potential.has_active_set:
            raise al.ActiveLearningError(
                'the potential has no active set (.asi), which exploration needs to track gamma; build one with '
                '`aiida-glassml potential active-set` (an ActiveSetCalculation on its training data) and pass that '
                'potential, or leave out `potential` so the loop fits one first.'
            )
    dataset = inputs.get('dataset')
    if dataset is not None:
        missing = sorted(symbols - set(dataset.elements))
        if missing and potential is None and not committee:
            raise al.ActiveLearningError(f'the exploration compositions contain {missing}, which the dataset '
                                         f'(elements {dataset.elements}) lacks; the first fit could not cover them.')  # fmt: skip
    label = inputs.get('label', {})
    if label:
        from aiida_glassml.workflows.label import check_element_coverage

        engine = label['engine'].value
        family = label.get('pseudo_family') or label.get('potential_family')
        settings_label = label['settings'].get_dict()
        if engine == 'potential':
            teacher = label.get('potential')
            if teacher is not None:
                missing = sorted(symbols - set(teacher.elements))
                if missing:
                    raise al.ActiveLearningError(f'the labelling potential (elements {teacher.elements}) does not cover '
                                                 f'{missing} of the exploration compositions; choose a teacher that does.')  # fmt: skip
        else:
            check_element_coverage(engine, sorted(symbols), settings_label, family.value if family else None)
        level = check_level_of_theory(inputs, label, symbols)
        check_fit_reference_energies(inputs, [level, *(inputs[n].level_of_theory for n in ('dataset', 'test_set')
                                                       if inputs.get(n) is not None)])  # fmt: skip
    engine = inputs['engine'].value if 'engine' in inputs else 'ase'
    if engine not in ENGINES:
        raise al.ActiveLearningError(f'unknown MD engine {engine!r}; use one of {ENGINES}.')
    if not inputs.get(engine):
        raise al.ActiveLearningError(f'MD engine `{engine}` needs its inputs (at least `code`) in the `{engine}` namespace.')
    if selector == 'force_deviation' and engine != 'ase':
        raise al.ActiveLearningError(f'the force_deviation selector runs the committee in ASE; set `engine` to ase '
                                     f'(got {engine!r}).')  # fmt: skip
    return settings


def check_fit_reference_energies(inputs, levels) -> None:
    """The fits' fixed reference energies (protocol ``nafepo4``) belong to one level of theory: refused before the
    loop for labels of another (FitSettingsError), rather than at its first fit."""
    from aiida_glassml.fitting import settings as fit_settings

    node = (inputs.get('fit') or {}).get('pacemaker', {}).get('settings')
    if node is None:
        return
    for level in levels:
        fit_settings.check_reference_level(node.get_dict(), level)


def check_level_of_theory(inputs, label, symbols) -> dict | None:
    """The new labels must be at the level of theory of the dataset (and of the test set), or the merge before each
    refit would be refused mid-loop: CP2K/GTH and VASP/PAW energies differ by hundreds of eV per atom. Returns the
    labels' level (None when it cannot be worked out here)."""
    from aiida_glassml.labeling.level_of_theory import compare_levels
    from aiida_glassml.workflows.label import level_of_theory_for

    family = label.get('pseudo_family') or label.get('potential_family')
    try:
        level = level_of_theory_for(label['engine'].value, label['settings'].get_dict(),
                                    [_probe_structure(sorted(symbols))], label['code'],
                                    family=family.value if family else None, potential=label.get('potential'))  # fmt: skip
    except Exception:  # noqa: BLE001 - a level that cannot be worked out here is checked again at the merge
        return None
    for name in ('dataset', 'test_set'):
        node = inputs.get(name)
        if node is None:
            continue
        differences = compare_levels(node.level_of_theory, level)
        if differences:
            raise al.ActiveLearningError(
                f'the `{name}` labels and the labelling engine differ in level of theory ({"; ".join(differences)}); '
                'label with the settings the data were made with, or start from data labelled by this engine.'
            )
    return level


def validate_inputs(inputs, _ctx=None) -> str | None:
    if 'exploration' not in inputs or 'compositions' not in inputs:
        return None
    try:
        check_loop_inputs(inputs)
    except (ValueError, ProtocolError) as exc:
        return str(exc)
    return None


def _expose_engine_inputs(spec) -> None:
    spec.input('engine', valid_type=orm.Str, default=lambda: orm.Str('ase'),
               help=f'MD engine of the exploration and stability runs, one of {ENGINES}.')  # fmt: skip
    spec.expose_inputs(AseMDCalculation, namespace='ase',
                       exclude=('structure', 'protocol', 'potential', 'calculator', 'committee'),
                       namespace_options={'required': False, 'populate_defaults': False,
                                          'help': 'AseMDCalculation inputs (engine `ase`): code, options.'})  # fmt: skip
    spec.expose_inputs(LammpsMDBaseWorkChain, namespace='lammps', exclude=('md.structure', 'md.protocol', 'md.potential'),
                       namespace_options={'required': False, 'populate_defaults': False,
                                          'help': 'LammpsMDBaseWorkChain inputs (engine `lammps`): a LAMMPS with '
                                                  'ML-PACE, settings, options.'})  # fmt: skip
    # the engines' own validators need structure, protocol and potential, which each run adds
    spec.inputs['ase'].validator = None
    spec.inputs['lammps'].validator = None


def _md_builder(process, structure, protocol: MDProtocol, potential, label: str, committee: dict | None = None):
    """(process class, inputs) of one MD run with the exposed engine inputs of ``process`` (with ``committee``: an
    ASE run of the committee instead of ``potential``)."""
    engine = process.inputs.engine.value
    if engine == 'ase':
        inputs = AttributeDict(process.exposed_inputs(AseMDCalculation, 'ase'))
        inputs.structure = structure
        if committee:
            inputs.committee = dict(committee)
        else:
            inputs.potential = potential
        inputs.protocol = orm.Dict(protocol.to_dict())
        inputs.metadata = {**inputs.get('metadata', {}), 'call_link_label': label}
        return AseMDCalculation, inputs
    inputs = AttributeDict(process.exposed_inputs(LammpsMDBaseWorkChain, 'lammps'))
    inputs.md = AttributeDict(inputs.md)
    inputs.md.structure, inputs.md.potential = structure, potential
    inputs.md.protocol = orm.Dict(protocol.to_dict())
    inputs.metadata = {'call_link_label': label}
    return LammpsMDBaseWorkChain, inputs


def fit_inputs(exposed, dataset, link_label: str, initial_potential=None) -> AttributeDict:
    """FitAceWorkChain inputs of the loop: the held-out set never enters the fit (``test_fraction`` None), so a
    potential's provenance holds exactly the frames it was fitted on; an up-fit continues ``initial_potential``."""
    inputs = AttributeDict(exposed)
    inputs.pacemaker = AttributeDict(inputs.pacemaker)
    settings = inputs.pacemaker.settings.get_dict() if 'settings' in inputs.pacemaker else {}
    inputs.pacemaker.settings = orm.Dict({**settings, 'test_fraction': None})
    inputs.dataset = dataset
    if initial_potential is not None:
        inputs.initial_potential = initial_potential
    inputs.metadata = {'call_link_label': link_label}
    return inputs


def submit_evaluation(workchain, potential, dataset, link_label: str):
    """Submit the EvaluatePotentialCalculation of ``potential`` on ``dataset`` (a job, so the worker is not blocked
    and a daemon crash cannot leave it half-done) on the python code of the loop's fits."""
    from aiida_glassml.workflows.fit_ace import evaluation_code

    builder = evaluation_builder(potential, dataset, code=evaluation_code(workchain.inputs.fit))
    builder.metadata.call_link_label = link_label
    node = workchain.submit(EvaluatePotentialCalculation, **builder._inputs(prune=True))
    workchain.report(f'evaluating {type(potential).__name__}<{potential.pk}> on {dataset.n_frames} test frames: '
                     f'EvaluatePotentialCalculation<{node.pk}>')  # fmt: skip
    return node


def member_label(member: int) -> str:
    return f'member_{member:02d}'


def committee_fit_inputs(exposed, dataset, member: int, settings: dict, link_label: str,
                         initial_potential=None) -> AttributeDict:  # fmt: skip
    """FitAceWorkChain inputs of committee member ``member``: it leaves out its own seeded ``committee_holdout``
    share of ``dataset`` (FitAceWorkChain's recorded split), which is what makes the members differ; pacemaker's own
    seed is the member's too, though with its zero-initialised coefficients that alone would not change a fit."""
    inputs = fit_inputs(exposed, dataset, link_label, initial_potential)
    seed = al.member_seed(settings['seed'], member)
    inputs.pacemaker.settings = orm.Dict({**inputs.pacemaker.settings.get_dict(),
                                          'test_fraction': settings['committee_holdout'], 'seed': seed})  # fmt: skip
    return inputs


def _span_seconds(nodes) -> float | None:
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return None
    return round(max(n.mtime for n in nodes).timestamp() - min(n.ctime for n in nodes).timestamp(), 2)


class ActiveLearningIterationWorkChain(SubmitOnceMixin, WorkChain):
    """One iteration of batch active learning (explore, select, label, refit, test, stability), with a report."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('iteration', valid_type=orm.Int, help='1-based iteration number (re-randomises the seeds).')
        spec.input('potential', valid_type=AcePotentialData, required=False,
                   help='Current potential, with its active set (selector gamma).')
        spec.input_namespace('committee', valid_type=AcePotentialData, dynamic=True, required=False,
                             populate_defaults=False, help='Current committee (selector force_deviation).')
        spec.input('train_set', valid_type=TrainingSetData, help='Frames the current potential was fitted on.')
        spec.input('test_set', valid_type=TrainingSetData, help='Fixed held-out frames for the test metrics.')
        spec.input('compositions', valid_type=orm.Dict, help='label -> {units, fractions[, oxidation_states]}.')
        spec.input('exploration', valid_type=orm.Dict, help=f'Exploration settings: {EXPLORATION_KEYS}.')
        spec.input('stability', valid_type=orm.Dict, required=False, help=f'Stability run: {STABILITY_KEYS}.')
        spec.input('stability_structure', valid_type=orm.StructureData, required=False,
                   help='Dense random structure of the stability run (the same every iteration).')
        spec.input('settings', valid_type=orm.Dict, help='Loop settings (DEFAULT_LOOP_SETTINGS).')
        _expose_engine_inputs(spec)
        spec.expose_inputs(PaceSelectCalculation, namespace='select', exclude=('potential', 'candidates'),
                           namespace_options={'help': 'PaceSelectCalculation inputs: code, settings, options.'})
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('structures', 'mode'),
                           namespace_options={'help': 'LabelWorkChain inputs of the single points (any engine).'})
        spec.expose_inputs(FitAceWorkChain, namespace='fit', exclude=('dataset', 'test_set', 'initial_potential'),
                           namespace_options={'help': 'FitAceWorkChain inputs of the up-fit.'})
        spec.outline(
            cls.setup,
            cls.generate_structures,
            cls.run_exploration,
            cls.inspect_exploration,
            if_(cls.should_select)(
                if_(cls.selects_by_gamma)(
                    cls.run_selection,
                    cls.inspect_selection,
                ).else_(
                    cls.select_by_force_deviation,
                ),
                if_(cls.should_label)(
                    cls.run_labelling,
                    cls.inspect_labelling,
                    cls.run_fit,
                    cls.inspect_fit,
                    cls.evaluate_test_set,
                    cls.inspect_test_evaluation,
                    if_(cls.should_test_stability)(cls.run_stability, cls.inspect_stability),
                ),
            ),
            cls.make_report,
        )
        spec.output('report', valid_type=orm.Dict, help='Counts, metrics, stability, timings and the outcome.')
        spec.output('exploration_summary', valid_type=orm.Dict, required=False)
        spec.output('selection', valid_type=orm.Dict, required=False,
                    help='The selection (frames with their gamma, or σ_F,max with the committee selector).')
        spec.output('labels', valid_type=TrainingSetData, required=False, help='The new labelled frames.')
        spec.output('train_set', valid_type=TrainingSetData, required=False, help='Merged training set of the refit.')
        spec.output('potential', valid_type=AcePotentialData, required=False,
                    help='The refitted potential (with a committee: its first member, whose test metrics are reported).')
        spec.output_namespace('committee', valid_type=AcePotentialData, dynamic=True, required=False,
                              help='The refitted committee (selector force_deviation).')
        spec.output('test_metrics', valid_type=orm.Dict, required=False, help='Refitted potential on the test set.')
        spec.output('stability', valid_type=orm.Dict, required=False, help='Stability verdict of the new potential.')
        spec.output('stability_figure', valid_type=orm.SinglefileData, required=False,
                    help='Energy against time of the stability run (PNG).')
        spec.exit_code(310, 'ERROR_NO_EXPLORATION', message='no exploration run could be made or finished: {details}')
        spec.exit_code(320, 'ERROR_SELECTION_FAILED', message='the selection failed: {details}')
        spec.exit_code(330, 'ERROR_LABELLING_FAILED', message='labelling produced no frames: {details}')
        spec.exit_code(340, 'ERROR_FIT_FAILED', message='the up-fit failed: {details}')
        spec.exit_code(345, 'ERROR_EVALUATION_FAILED', message='the test-set evaluation failed: {details}')

    # -- steps ------------------------------------------------------------------------------------------------------
    def setup(self):
        self.ctx.settings = al.validate_loop_settings(self.inputs.settings.get_dict())
        self.ctx.exploration = self.inputs.exploration.get_dict()
        self.ctx.iteration = self.inputs.iteration.value
        self.ctx.selector = self.ctx.settings['selector']
        self.ctx.committee_in = dict(self.inputs.committee) if self.inputs.get('committee') else None
        self.ctx.outcome = None
        self.ctx.parts = {}
        self.ctx.timings = {}

    def selects_by_gamma(self):
        return self.ctx.selector == 'gamma'

    def _window(self) -> tuple[float, float]:
        md = self.ctx.exploration['md']
        return (md['gamma_lo'], md['gamma_hi']) if self.ctx.selector == 'gamma' else sigma_window(self.ctx.exploration)

    def generate_structures(self):
        """Seeded random packings per composition (re-randomised each iteration) and their strained copies."""
        explore, base = self.ctx.exploration, self.ctx.settings['seed']
        structures, failed, index = {}, [], 0
        for name, composition in sorted(self.inputs.compositions.get_dict().items()):
            for packing in range(int(explore.get('packings_per_composition', 1))):
                seed = al.exploration_seed(base, self.ctx.iteration, index)
                index += 1
                _, node = random_structure.run_get_node(
                    orm.Dict(composition), orm.Int(seed), orm.Dict(explore.get('structure_settings') or {})
                )
                if not node.is_finished_ok:
                    failed.append(f'{name} seed {seed}: {node.exit_message}')
                    continue
                structure = node.outputs.result
                key = f'{name}_p{packing}'
                if explore.get('strains'):
                    copies = strained_copies(structure, orm.Dict({'strains': explore['strains']}))
                    for strain_key, copy_ in sorted(copies.items()):
                        structures[f'{key}_{strain_key}'] = copy_
                else:
                    structures[key] = structure
        for failure in failed:
            self.report(f'random packing failed and is skipped: {failure}')
        self.ctx.structures = structures
        self.report(f'iteration {self.ctx.iteration}: {len(structures)} exploration structures')

    def run_exploration(self):
        if not self.ctx.structures:
            return self.exit_codes.ERROR_NO_EXPLORATION.format(details='every random packing failed')
        futures = {}
        for index, (key, structure) in enumerate(sorted(self.ctx.structures.items())):
            seed = al.velocity_seed(self.ctx.settings['seed'], self.ctx.iteration, index)
            protocol = exploration_protocol(self.ctx.exploration, seed, self.ctx.selector)
            process, inputs = _md_builder(self, structure, protocol, self.inputs.get('potential'), f'explore_{key}',
                                          self.ctx.committee_in)  # fmt: skip
            if self.inputs.engine.value == 'ase':
                inputs.trajectory_frames = orm.Int(self.ctx.exploration.get('trajectory_frames', 20))
            else:
                inputs.md.trajectory_frames = orm.Int(self.ctx.exploration.get('trajectory_frames', 20))
            futures[f'explore_{key}'] = self.submit(process, **inputs)
        self.ctx.run_labels = sorted(futures)
        tracked = protocol.gamma or protocol.force_deviation
        what = 'gamma' if protocol.gamma else f'the force deviation of {len(self.ctx.committee_in)} committee members'
        self.report(f'submitted {len(futures)} exploration runs ({self.inputs.engine.value}, '
                    f'{protocol.total_steps} steps each, {what} every {tracked.interval} step(s))')  # fmt: skip
        return ToContext(**futures)

    def inspect_exploration(self):
        lo, hi = self._window()
        quantity, name = ('max_gamma', 'gamma') if self.ctx.selector == 'gamma' else ('max_force_deviation', 'sigma')
        outcomes, results, candidates = {f'_{self.ctx.selector}_window': [lo, hi]}, {}, {}
        for label in self.ctx.run_labels:
            node = self.ctx[label]
            result = node.outputs.results if 'results' in node.outputs else None
            value = result.get(quantity) if result is not None else None
            outcome = al.classify_run(node.is_finished_ok, node.exit_status, value, lo)
            outcomes[label] = {'outcome': outcome, 'exit_status': node.exit_status, 'pk': node.pk, quantity: value}
            if outcome == 'crashed':
                self.report(f'{label} crashed ({node.process_label}<{node.pk}>, exit {node.exit_status}: '
                            f'{node.exit_message}); it is kept and the loop goes on')  # fmt: skip
            if result is not None:
                results[label] = result
            if outcome != 'quiet' and 'extrapolative_trajectory' in node.outputs:  # a crashed run's frames count too
                candidates[label] = node.outputs.extrapolative_trajectory
        summary = bookkeeping.summarise_exploration(orm.Dict(outcomes), **results)
        self.out('exploration_summary', summary)
        self.ctx.parts['exploration'] = summary
        self.ctx.candidates = candidates
        self.ctx.timings['exploration_s'] = _span_seconds([self.ctx[label] for label in self.ctx.run_labels])
        s = summary.get_dict()
        self.report(f'exploration: {s["runs"]} runs, {s["quiet"]} quiet, {s["extrapolating"]} extrapolating, '
                    f'{s["halted"]} halted at {name}_hi, {s["crashed"]} crashed; {s["n_candidates"]} candidate frames')
        if s['runs'] == s['crashed'] and not candidates:
            return self.exit_codes.ERROR_NO_EXPLORATION.format(
                details=f'all {s["runs"]} exploration runs crashed before any frame reached {name}_lo')
        self.ctx.outcome = al.decide_after_exploration(s, self.ctx.settings)
        if self.ctx.outcome:
            self.report(f'converged: {s["quiet_fraction"]:.0%} of the runs stayed below {name}_lo '
                        f'(threshold {self.ctx.settings["converged_fraction"]:.0%})')
        elif not candidates:
            self.ctx.outcome = 'few_new_frames'
            self.report('no run produced candidate frames; nothing to select')
        return None

    def should_select(self):
        return self.ctx.outcome is None

    def run_selection(self):
        from aiida_glassml.calculations.pace_select import check_candidates

        inputs = AttributeDict(self.exposed_inputs(PaceSelectCalculation, 'select'))
        settings = {**(inputs.settings.get_dict() if 'settings' in inputs else {}),
                    'max_select': self.ctx.settings['max_select']}  # fmt: skip
        problem = check_candidates(self.inputs.potential, self.ctx.candidates, settings)
        if problem:  # e.g. a memory limit too small for this pool: stop before an excepted CalcJob is stored
            return self.exit_codes.ERROR_SELECTION_FAILED.format(details=problem)
        inputs.settings = orm.Dict(settings)
        inputs.potential = self.inputs.potential
        inputs.candidates = self.ctx.candidates
        inputs.metadata = {**inputs.get('metadata', {}), 'call_link_label': 'select'}
        node = self.submit(PaceSelectCalculation, **inputs)
        self.report(f'selecting at most {self.ctx.settings["max_select"]} frames from {len(self.ctx.candidates)} '
                    f'runs: PaceSelectCalculation<{node.pk}>')  # fmt: skip
        return ToContext(select=node)

    def inspect_selection(self):
        node = self.ctx.select
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SELECTION_FAILED.format(
                details=f'PaceSelectCalculation<{node.pk}> exit {node.exit_status}: {node.exit_message}')
        self.out('selection', node.outputs.selection)
        self.ctx.parts['selection'] = node.outputs.selection
        self.ctx.selected = dict(node.outputs.structures) if 'structures' in node.outputs else {}
        self.ctx.timings['selection_s'] = _span_seconds([node])
        n_selected = len(self.ctx.selected)
        self.report(f'selected {n_selected} of {node.outputs.selection["n_candidates"]} candidate frames')
        self.ctx.outcome = al.decide_after_selection(n_selected, self.ctx.settings)
        return None

    def select_by_force_deviation(self):
        """The committee selector: candidate frames with sigma_lo < σ_F,max < sigma_hi, most uncertain first."""
        problem = check_committee_candidates(self.ctx.candidates)
        if problem:
            return self.exit_codes.ERROR_SELECTION_FAILED.format(details=problem)
        sigma_lo, sigma_hi = self._window()
        window = orm.Dict({'sigma_lo': sigma_lo, 'sigma_hi': sigma_hi, 'max_select': self.ctx.settings['max_select']})
        results, node = select_committee_frames.run_get_node(window, **self.ctx.candidates,
                                                             metadata={'call_link_label': 'select'})  # fmt: skip
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SELECTION_FAILED.format(
                details=f'{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message}')
        self.out('selection', results['selection'])
        self.ctx.parts['selection'] = results['selection']
        self.ctx.selected = {key: value for key, value in results.items() if key.startswith('selected_')}
        self.ctx.timings['selection_s'] = _span_seconds([node])
        record = results['selection'].get_dict()
        self.report(f'selected {record["n_selected"]} of {record["n_candidates"]} candidate frames by committee force '
                    f'deviation ({record["n_selectable"]} inside {sigma_lo} < σ_F,max < {sigma_hi} eV/Å, '
                    f'{record["n_above_sigma_hi"]} above)')  # fmt: skip
        self.ctx.outcome = al.decide_after_selection(record['n_selected'], self.ctx.settings)
        return None

    def should_label(self):
        return self.ctx.outcome is None

    def run_labelling(self):
        inputs = AttributeDict(self.exposed_inputs(LabelWorkChain, 'label'))
        inputs.structures = self.ctx.selected
        inputs.mode = orm.Str('single_point')
        inputs.metadata = {'call_link_label': 'label'}
        node = self.submit(LabelWorkChain, **inputs)
        self.report(f'labelling {len(self.ctx.selected)} frames with {inputs.engine.value}: LabelWorkChain<{node.pk}>')
        return ToContext(label=node)

    def inspect_labelling(self):
        node = self.ctx.label
        if 'report' in node.outputs:
            self.ctx.parts['labelling'] = node.outputs.report
        self.ctx.timings['labelling_s'] = _span_seconds([node])
        if 'training_set' not in node.outputs:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(
                details=f'LabelWorkChain<{node.pk}> exit {node.exit_status}: {node.exit_message}')
        self.ctx.labels = node.outputs.training_set
        self.out('labels', self.ctx.labels)
        return None

    def run_fit(self):
        merged = append_training_set(self.inputs.train_set, self.ctx.labels)
        self.ctx.train_set = merged['training_set']
        self.report(f'training set: {self.inputs.train_set.n_frames} + {self.ctx.labels.n_frames} new frames -> '
                    f'{self.ctx.train_set.n_frames} (duplicates dropped: {merged["report"]["n_duplicates_dropped"]})')
        exposed = self.exposed_inputs(FitAceWorkChain, 'fit')
        if self.ctx.committee_in:
            futures = {}
            for member, label in enumerate(sorted(self.ctx.committee_in)):
                inputs = committee_fit_inputs(exposed, self.ctx.train_set, member, self.ctx.settings, f'fit_{label}',
                                              self.ctx.committee_in[label])  # fmt: skip
                futures[f'fit_{label}'] = self.submit(FitAceWorkChain, **inputs)
            self.ctx.fit_labels = sorted(futures)
            self.report(f'up-fit of the {len(futures)} committee members: '
                        f'{", ".join(f"FitAceWorkChain<{n.pk}>" for n in futures.values())}')  # fmt: skip
            return ToContext(**futures)
        inputs = fit_inputs(exposed, self.ctx.train_set, 'fit', self.inputs.potential)
        node = self.submit(FitAceWorkChain, **inputs)
        self.report(f'up-fit from AcePotentialData<{self.inputs.potential.pk}>: FitAceWorkChain<{node.pk}>')
        self.ctx.fit_labels = ['fit']
        return ToContext(fit=node)

    def inspect_fit(self):
        nodes = [self.ctx[label] for label in self.ctx.fit_labels]
        self.ctx.timings['fit_s'] = _span_seconds(nodes)
        for node in nodes:
            if not node.is_finished_ok or 'potential' not in node.outputs:
                return self.exit_codes.ERROR_FIT_FAILED.format(
                    details=f'FitAceWorkChain<{node.pk}> exit {node.exit_status}: {node.exit_message}')
        self.ctx.potential = nodes[0].outputs.potential
        self.ctx.parts['fit_metrics'] = nodes[0].outputs.metrics
        self.out('train_set', self.ctx.train_set)
        self.out('potential', self.ctx.potential)
        if self.ctx.committee_in:
            self.ctx.committee = {label[len('fit_'):]: self.ctx[label].outputs.potential for label in self.ctx.fit_labels}
            for label, member in self.ctx.committee.items():
                self.out(f'committee.{label}', member)
        return None

    def evaluate_test_set(self):
        node = submit_evaluation(self, self.ctx.potential, self.inputs.test_set, 'test_evaluation')
        return ToContext(test_evaluation=node)

    def inspect_test_evaluation(self):
        node = self.ctx.test_evaluation
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_EVALUATION_FAILED.format(
                details=f'EvaluatePotentialCalculation<{node.pk}> exit {node.exit_status}: {node.exit_message}')
        m = node.outputs.metrics
        self.ctx.parts['test_metrics'] = m
        self.out('test_metrics', m)
        self.report(f'test set ({self.inputs.test_set.n_frames} frames): force RMSE {m["force_rmse"]:.0f} meV/Å, '
                    f'energy RMSE {m["energy_rmse"]:.1f} meV/atom')  # fmt: skip

    def should_test_stability(self):
        return 'stability_structure' in self.inputs and 'stability' in self.inputs and \
            self.inputs.stability.get_dict().get('enabled', False)

    def run_stability(self):
        stability = self.inputs.stability.get_dict()
        seed = al.velocity_seed(self.ctx.settings['seed'], self.ctx.iteration, 9_999)
        self.ctx.stability_protocol = stability_protocol(stability, self.ctx.exploration, seed, self.ctx.selector)
        process, inputs = _md_builder(self, self.inputs.stability_structure, self.ctx.stability_protocol,
                                      self.ctx.potential, 'stability', self.ctx.get('committee'))  # fmt: skip
        node = self.submit(process, **inputs)
        self.report(f'stability run of the new potential: NVT {stability["md"]["temperature"]:g} K for '
                    f'{stability["md"]["time"]:g} ps, {process.__name__}<{node.pk}>')  # fmt: skip
        return ToContext(stability=node)

    def inspect_stability(self):
        node = self.ctx.stability
        self.ctx.timings['stability_s'] = _span_seconds([node])
        if 'thermo' not in node.outputs or 'results' not in node.outputs:
            self.report(f'stability run {node.process_label}<{node.pk}> left no thermo (exit {node.exit_status}); '
                        'recorded as not survived')  # fmt: skip
            verdict = {'survived': False, 'reason': f'no output (exit status {node.exit_status})', 'failed_at_ps': 0.0,
                       'run_pk': node.pk}  # fmt: skip
            self.ctx.parts['stability'] = orm.Dict(verdict).store()  # an input of the iteration report
            return
        protocol = self.ctx.stability_protocol
        run = {'timestep': protocol.timestep, 'n_atoms': len(self.inputs.stability_structure.sites),
               'exit_status': node.exit_status, 'temperature': protocol.stages[0].temperature,
               'planned_ps': protocol.total_time}  # fmt: skip
        outputs = bookkeeping.stability_verdict(node.outputs.thermo, node.outputs.results, orm.Dict(run))
        self.ctx.parts['stability'] = outputs['verdict']
        self.out('stability', outputs['verdict'])
        self.out('stability_figure', outputs['figure'])
        v = outputs['verdict'].get_dict()
        state = 'survived' if v['survived'] else f'failed after {v["failed_at_ps"]:.3f} ps ({v["reason"]})'
        self.report(f'stability: {state}')

    def make_report(self):
        potential_in = self.inputs.get('potential') or self.ctx.committee_in[sorted(self.ctx.committee_in)[0]]
        header = {'iteration': self.ctx.iteration, 'outcome': self.ctx.outcome or 'refitted',
                  'selector': self.ctx.selector, 'potential_in': potential_in.uuid,
                  'potential_out': self.ctx.potential.uuid if 'potential' in self.ctx else None,
                  'dataset_frames': (self.ctx.train_set if 'train_set' in self.ctx else self.inputs.train_set).n_frames}  # fmt: skip
        if self.ctx.committee_in:
            header['committee_in'] = {label: member.uuid for label, member in sorted(self.ctx.committee_in.items())}
            header['committee_out'] = {label: member.uuid for label, member in sorted(self.ctx.get('committee', {}).items())}
        parts = {'header': orm.Dict(header), 'timings': orm.Dict(self.ctx.timings)}
        parts.update(self.ctx.parts)
        report = bookkeeping.iteration_report(**parts)
        self.out('report', report)


class ActiveLearningWorkChain(SubmitOnceMixin, ProtocolMixin, WorkChain):
    """Batch active learning until a stop criterion holds (see ``aiida_glassml.fitting.active_learning.STOP_REASONS``).

    Start from a training set and a potential with an active set, or from a training set alone (the loop fits first).
    Outputs the final potential and training set, the fixed test set, a report with one row per iteration and a figure.
    To continue a finished loop, start a new one from its ``potential``, ``train_set`` and ``test_set``."""

    _protocol_file = 'active_learning'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('dataset', valid_type=TrainingSetData, help='Labelled frames to start from (the training set).')
        spec.input('test_set', valid_type=TrainingSetData, required=False,
                   help='Fixed held-out frames; without it `test_fraction` of the dataset is split off once.')
        spec.input('test_fraction', valid_type=orm.Float, default=lambda: orm.Float(0.1),
                   help='Held-out share of `dataset` when no `test_set` is given.')
        spec.input('potential', valid_type=AcePotentialData, required=False,
                   help='Starting potential with an active set; without it the loop fits one on `dataset` first.')
        spec.input_namespace('committee', valid_type=AcePotentialData, dynamic=True, required=False,
                             populate_defaults=False,
                             help='Starting committee (selector force_deviation): two or more ACE potentials of one '
                                  'element set; without it the loop fits `committee_size` members first.')  # fmt: skip
        spec.expose_inputs(ActiveLearningIterationWorkChain,
                           exclude=('iteration', 'potential', 'committee', 'train_set', 'test_set', 'stability_structure'))
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.prepare_test_set,
            if_(cls.needs_initial_fit)(cls.run_initial_fit, cls.inspect_initial_fit),
            cls.evaluate_starting_potential,
            cls.prepare_stability_structure,
            while_(cls.should_iterate)(
                cls.run_iteration,
                cls.inspect_iteration,
            ),
            cls.results,
        )
        spec.output('potential', valid_type=AcePotentialData,
                    help='The last potential (with its active set); with a committee its first member.')
        spec.output_namespace('committee', valid_type=AcePotentialData, dynamic=True, required=False,
                              help='The last committee (selector force_deviation).')
        spec.output('train_set', valid_type=TrainingSetData, help='Every frame the last potential was fitted on.')
        spec.output('test_set', valid_type=TrainingSetData, help='The fixed held-out frames.')
        spec.output('report', valid_type=orm.Dict, help='One row per iteration (table), the stop reason.')
        spec.output('figure', valid_type=orm.SinglefileData, help='Frames, errors and quiet runs per iteration (PNG).')
        spec.output_namespace('iterations', valid_type=orm.Dict, dynamic=True, help='Report of each iteration.')
        spec.exit_code(300, 'ERROR_INITIAL_FIT_FAILED', message='the first fit failed: {details}')
        spec.exit_code(301, 'ERROR_ITERATION_FAILED',
                       message='iteration {iteration} failed: {details} (the outputs so far are attached)')
        spec.exit_code(302, 'ERROR_STABILITY_STRUCTURE', message='the stability structure could not be made: {details}')
        spec.exit_code(303, 'ERROR_EVALUATION_FAILED', message='the starting potential could not be evaluated: {details}')
        spec.exit_code(401, 'ERROR_MAXIMUM_ITERATIONS_EXCEEDED',
                       message='stopped after max_iterations without converging; continue from the outputs.')

    @classmethod
    def get_builder_from_protocol(
        cls, dataset, compositions: dict | None = None, potential=None, test_set=None, *, md_code, label_code,
        pacemaker_code, select_code=None, label_engine: str = 'cp2k', label_potential=None, committee: dict | None = None,
        protocol: str | None = None,
        overrides: dict | None = None, engine: str | None = None, pseudo_family: str | None = None,
        potential_family: str | None = None, md_options: dict | None = None, lammps_settings: dict | None = None,
    ):  # fmt: skip
        """A builder from ``active_learning.yaml``; every part is validated before anything is stored.

        ``compositions``: label -> {units, fractions}; None: the compositions of the dataset's frames.
        ``md_code``: ``glassml-python`` (engine ase) or a LAMMPS with ML-PACE (engine lammps). ``label_code`` and
        ``label_engine`` (cp2k, qe, vasp or potential with ``label_potential``): the labelling. ``pacemaker_code``:
        the fit (pace_yaml2yace and pace_activeset from its computer); ``select_code``: pace_select (default: the
        code ``pace_select`` on the pacemaker code's computer). ``committee``: label -> AcePotentialData, the starting
        committee of the ``force_deviation`` selector (``overrides={'settings': {'selector': 'force_deviation'}}``)."""
        from aiida_glassml.workflows.fit_ace import _load_code

        inputs = cls.get_protocol_inputs(protocol, overrides)
        engine = engine or inputs['engine']
        if compositions is None:
            compositions = compositions_of_dataset(dataset)
        structures_probe = {'probe': _probe_structure(sorted(composition_symbols(compositions)))}
        label_kwargs = {'potential': label_potential} if label_engine == 'potential' else {}
        label = LabelWorkChain.get_builder_from_protocol(
            label_code, structures_probe, engine=label_engine, mode='single_point', protocol=inputs['label_protocol'],
            overrides=inputs['label'], pseudo_family=pseudo_family, potential_family=potential_family, **label_kwargs,
        )  # fmt: skip
        fit = FitAceWorkChain.get_protocol_inputs(inputs['fit_protocol'], inputs['fit'], code=pacemaker_code)
        computer = pacemaker_code.computer.label if pacemaker_code.computer is not None else None

        builder = cls.get_builder()
        builder.dataset = dataset
        if test_set is not None:
            builder.test_set = test_set
        if potential is not None:
            builder.potential = potential
        if committee:
            builder.committee = dict(committee)
        builder.test_fraction = orm.Float(inputs['test_fraction'])
        builder.compositions = orm.Dict(compositions)
        builder.exploration = orm.Dict(inputs['exploration'])
        builder.stability = orm.Dict(inputs['stability'])
        builder.settings = orm.Dict(inputs['settings'])
        builder.engine = orm.Str(engine)
        if engine == 'ase':
            builder.ase.code = md_code
            for key, value in (md_options or {}).items():
                builder.ase.metadata.options[key] = value
        else:
            builder.lammps.md.code = md_code
            if lammps_settings:
                builder.lammps.md.settings = orm.Dict(lammps_settings)
            # serial by default (the ML-PACE build here has no MPI); a cluster's options come in `md_options`
            for key, value in {'withmpi': False, **(md_options or {})}.items():
                builder.lammps.md.metadata.options[key] = value
        builder.select.code = select_code or _load_code('pace_select', computer)
        if inputs['select_settings']:
            builder.select.settings = orm.Dict(inputs['select_settings'])
        for key in ('engine', 'code', 'settings', 'pseudo_family', 'potential_family', 'potential'):
            if key in label:
                builder.label[key] = label[key]
        builder.fit.pacemaker.code = pacemaker_code
        builder.fit.pacemaker.yaml2yace_code = _load_code('pace_yaml2yace', computer)
        builder.fit.pacemaker.activeset_code = _load_code('pace_activeset', computer)
        builder.fit.pacemaker.settings = orm.Dict(fit['pacemaker']['settings'])
        builder.fit.pacemaker.metadata = fit['pacemaker']['metadata']
        builder.fit.max_iterations = orm.Int(fit['max_iterations'])
        builder.fit.clean_workdir = orm.Bool(fit['clean_workdir'])
        builder.fit.make_plots = orm.Bool(fit['make_plots'])
        check_loop_inputs(builder._inputs(prune=True))
        return builder

    # -- steps ------------------------------------------------------------------------------------------------------
    def setup(self):
        self.ctx.settings = al.validate_loop_settings(self.inputs.settings.get_dict())
        self.ctx.iteration = 0
        self.ctx.stop_reason = None
        self.ctx.failure = None
        self.ctx.reports = {}
        self.ctx.test_rmse = []
        self.ctx.potential = self.inputs.get('potential')
        self.ctx.committee = dict(self.inputs.committee) if self.inputs.get('committee') else None
        if self.ctx.committee:  # the member the test metrics are of
            self.ctx.potential = self.ctx.committee[sorted(self.ctx.committee)[0]]
        self.ctx.train_set = self.inputs.dataset

    def prepare_test_set(self):
        if 'test_set' in self.inputs:
            self.ctx.test_set = self.inputs.test_set
            return
        split = split_training_set(self.inputs.dataset, self.inputs.test_fraction, orm.Int(self.ctx.settings['seed']))
        self.ctx.train_set, self.ctx.test_set = split['train'], split['test']
        self.report(f'held out {self.ctx.test_set.n_frames} of {self.inputs.dataset.n_frames} frames as the fixed '
                    'test set')  # fmt: skip

    def needs_initial_fit(self):
        return self.ctx.potential is None

    def run_initial_fit(self):
        exposed = self.exposed_inputs(ActiveLearningIterationWorkChain)['fit']
        if self.ctx.settings['selector'] == 'force_deviation':
            futures = {}
            for member in range(self.ctx.settings['committee_size']):
                label = f'initial_fit_{member_label(member)}'
                inputs = committee_fit_inputs(exposed, self.ctx.train_set, member, self.ctx.settings, label)
                futures[label] = self.submit(FitAceWorkChain, **inputs)
            self.ctx.initial_fit_labels = sorted(futures)
            self.report(f'no starting committee: fitting {len(futures)} members on seeded subsets of '
                        f'{self.ctx.train_set.n_frames} frames, '
                        f'{", ".join(f"FitAceWorkChain<{n.pk}>" for n in futures.values())}')  # fmt: skip
            return ToContext(**futures)
        inputs = fit_inputs(exposed, self.ctx.train_set, 'initial_fit')
        node = self.submit(FitAceWorkChain, **inputs)
        self.report(f'no starting potential: fitting one on {self.ctx.train_set.n_frames} frames, '
                    f'FitAceWorkChain<{node.pk}>')  # fmt: skip
        self.ctx.initial_fit_labels = ['initial_fit']
        return ToContext(initial_fit=node)

    def inspect_initial_fit(self):
        nodes = {label: self.ctx[label] for label in self.ctx.initial_fit_labels}
        for node in nodes.values():
            if not node.is_finished_ok or 'potential' not in node.outputs:
                return self.exit_codes.ERROR_INITIAL_FIT_FAILED.format(
                    details=f'FitAceWorkChain<{node.pk}> exit {node.exit_status}: {node.exit_message}')
        if self.ctx.settings['selector'] == 'force_deviation':
            self.ctx.committee = {label[len('initial_fit_'):]: node.outputs.potential for label, node in nodes.items()}
        self.ctx.potential = nodes[self.ctx.initial_fit_labels[0]].outputs.potential
        return None

    def evaluate_starting_potential(self):
        node = submit_evaluation(self, self.ctx.potential, self.ctx.test_set, 'starting_evaluation')
        return ToContext(starting_evaluation=node)

    def prepare_stability_structure(self):
        node = self.ctx.starting_evaluation
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_EVALUATION_FAILED.format(
                details=f'EvaluatePotentialCalculation<{node.pk}> exit {node.exit_status}: {node.exit_message}')
        metrics = node.outputs.metrics
        self.ctx.test_rmse.append(metrics['force_rmse'])
        self.report(f'starting potential on the test set: force RMSE {metrics["force_rmse"]:.0f} meV/Å')
        stability = self.inputs.stability.get_dict() if 'stability' in self.inputs else {}
        if not stability.get('enabled'):
            return None
        compositions = self.inputs.compositions.get_dict()
        name = stability.get('composition') or sorted(compositions)[0]
        _, node = random_structure.run_get_node(orm.Dict(compositions[name]), orm.Int(self.ctx.settings['seed']),
                                                orm.Dict(stability.get('structure_settings') or {}))  # fmt: skip
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_STABILITY_STRUCTURE.format(details=node.exit_message)
        self.ctx.stability_structure = node.outputs.result
        return None

    def should_iterate(self):
        return self.ctx.stop_reason is None

    def run_iteration(self):
        self.ctx.iteration += 1
        inputs = AttributeDict(self.exposed_inputs(ActiveLearningIterationWorkChain))
        inputs.iteration = orm.Int(self.ctx.iteration)
        if self.ctx.committee:
            inputs.committee = dict(self.ctx.committee)
        else:
            inputs.potential = self.ctx.potential
        inputs.train_set = self.ctx.train_set
        inputs.test_set = self.ctx.test_set
        if 'stability_structure' in self.ctx:
            inputs.stability_structure = self.ctx.stability_structure
        inputs.metadata = {'call_link_label': f'iteration_{self.ctx.iteration:02d}'}
        node = self.submit(ActiveLearningIterationWorkChain, **inputs)
        self.report(f'iteration {self.ctx.iteration}: ActiveLearningIterationWorkChain<{node.pk}>')
        return ToContext(current=node)

    def inspect_iteration(self):
        node = self.ctx.current
        if 'report' in node.outputs:
            self.ctx.reports[f'iteration_{self.ctx.iteration:02d}'] = node.outputs.report
        if not node.is_finished_ok:  # stop, but attach everything the loop has made so far
            self.ctx.stop_reason = 'failed'
            self.ctx.failure = (f'{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message}')
            self.report(f'iteration {self.ctx.iteration} failed: {self.ctx.failure}')
            return None
        report = node.outputs.report.get_dict()
        if 'potential' in node.outputs:
            self.ctx.potential = node.outputs.potential
            self.ctx.train_set = node.outputs.train_set
            if self.ctx.committee:
                self.ctx.committee = dict(node.outputs.committee)
            self.ctx.test_rmse.append(report.get('test_force_rmse'))
        outcome = report['outcome']
        if outcome in ('converged', 'few_new_frames'):
            self.ctx.stop_reason = outcome
        else:
            self.ctx.stop_reason = al.decide_after_fit(self.ctx.iteration, self.ctx.test_rmse, self.ctx.settings)
        if self.ctx.stop_reason:
            self.report(f'stop after iteration {self.ctx.iteration}: {self.ctx.stop_reason} '
                        f'({al.STOP_REASONS[self.ctx.stop_reason]})')
        return None

    def results(self):
        self.out('potential', self.ctx.potential)
        for label, member in sorted((self.ctx.committee or {}).items()):
            self.out(f'committee.{label}', member)
        self.out('train_set', self.ctx.train_set)
        self.out('test_set', self.ctx.test_set)
        for key, report in self.ctx.reports.items():
            self.out(f'iterations.{key}', report)
        meaning = al.STOP_REASONS.get(self.ctx.stop_reason) or f'iteration {self.ctx.iteration} failed: {self.ctx.failure}'
        stop = orm.Dict({'stop_reason': self.ctx.stop_reason, 'meaning': meaning,
                         'iterations': self.ctx.iteration, 'initial_test_force_rmse': self.ctx.test_rmse[0]})  # fmt: skip
        summary = bookkeeping.loop_report(stop=stop, **self.ctx.reports)
        self.out('report', summary['table'])
        self.out('figure', summary['figure'])
        self.report('iterations:\n' + summary['table']['text'])
        if self.ctx.stop_reason == 'failed':
            return self.exit_codes.ERROR_ITERATION_FAILED.format(iteration=self.ctx.iteration, details=self.ctx.failure)
        if self.ctx.stop_reason == 'max_iterations':
            return self.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED
        return None


def compositions_of_dataset(dataset: TrainingSetData) -> dict:
    """Each distinct composition of the frames as its own formula unit (``{formula: {units: [formula], fractions:
    [1.0]}}``): the training compositions, when none are given."""
    from aiida_glassml.labeling.frames import composition_formula

    from ase.data import chemical_symbols

    frameset = dataset.get_frameset()
    offsets, formulas = frameset.offsets, set()
    for index, meta in enumerate(frameset.metadata):
        numbers = frameset.numbers[offsets[index]:offsets[index + 1]]
        formulas.add(meta.get('composition') or composition_formula([chemical_symbols[z] for z in numbers]))
    return {formula: {'units': [formula], 'fractions': [1.0]} for formula in sorted(formulas)}


def _probe_structure(symbols) -> orm.StructureData:
    probe = orm.StructureData(cell=[[6, 0, 0], [0, 6, 0], [0, 0, 6]])
    for index, symbol in enumerate(symbols):
        probe.append_atom(position=(1.5 * index, 0, 0), symbols=symbol)
    return probe

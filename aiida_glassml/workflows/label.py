"""``LabelWorkChain``: labels (energies, forces, stress, magnetic moments) for a set of structures: DFT by AIMD or
single points, with CP2K, Quantum ESPRESSO or VASP through their official AiiDA plugins' base work chains, or single
points from an interatomic potential (engine ``potential``, a teacher) in one ``PotentialLabelCalculation``. Every
``TrainingSetData`` it makes records its level of theory."""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction, if_

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.labeling import level_of_theory as lot
from aiida_glassml.labeling import validation
from aiida_glassml.protocols import ProtocolError, ProtocolMixin, recursive_merge
from aiida_glassml.workflows.submit_once import SubmitOnceMixin

PROTOCOL_FILES = {'cp2k': 'label_cp2k', 'qe': 'label_qe', 'vasp': 'label_vasp', 'potential': 'label_potential'}
PLUGINS = {'cp2k': 'aiida-cp2k', 'qe': 'aiida-quantumespresso', 'vasp': 'aiida-vasp', 'potential': 'aiida-glassml'}
# Engines whose frames are numbered by their index inside each CalcJob (CP2K writes the MD step into its files).
STEPS_PER_CALCJOB = ('qe', 'vasp')


def _protocol_class(engine: str) -> type[ProtocolMixin]:
    if engine not in PROTOCOL_FILES:
        validation.validate_engine_and_mode(engine, 'single_point')  # raises: unknown engine
    return type(f'Label{engine.upper()}Protocol', (ProtocolMixin,), {'_protocol_file': PROTOCOL_FILES[engine]})


def validate_inputs(inputs, port_namespace):
    """Checks that need several inputs; run before anything is stored. Also runs where the inputs are exposed without
    ``mode`` and ``structures`` (InitialDatasetWorkChain: AIMD; the teacher engine: single points, as in active
    learning)."""
    try:
        engine = inputs['engine'].value
        default_mode = 'single_point' if engine == 'potential' else 'aimd'
        mode = inputs['mode'].value if 'mode' in port_namespace else default_mode
        validation.validate_engine_and_mode(engine, mode)
        if 'structures' in port_namespace:
            validation.validate_structures(inputs.get('structures', {}))
        settings = inputs['settings'].get_dict()
        check_settings_keys(engine, settings)
        if mode == 'aimd':
            validation.validate_aimd(settings.get('aimd', {}))
        if engine == 'qe' and 'pseudo_family' not in inputs:
            return 'engine `qe` needs `pseudo_family`: the label of an installed aiida-pseudo family.'
        if engine == 'vasp' and 'potential_family' not in inputs:
            return 'engine `vasp` needs `potential_family`: the name of an uploaded POTCAR family.'
        check_teacher_input(engine, inputs.get('potential'))
        check_bader_settings(engine, mode, settings, inputs.get('bader_code'))
        if inputs.get('structures'):
            symbols = sorted({kind.symbol for s in inputs['structures'].values() for kind in s.kinds})
            family_port = {'qe': 'pseudo_family', 'vasp': 'potential_family'}.get(engine)
            check_element_coverage(engine, symbols, settings, inputs[family_port].value if family_port else None,
                                   potential=inputs.get('potential'), structures=list(inputs['structures'].values()))
    except (LabelingInputError, ProtocolError) as exc:
        return str(exc)
    except KeyError as exc:
        return (
            f'`settings` lacks the key {exc}; build complete settings with '
            f'`LabelWorkChain.get_protocol_inputs(protocol, overrides, engine={engine!r})`.'
        )
    return None


#: engines whose single points can write a charge density for Bader charges
BADER_ENGINES = ('cp2k', 'vasp')


def check_bader_settings(engine: str, mode: str, settings: dict, bader_code=None) -> None:
    """``bader.enabled`` goes with single points of CP2K or VASP, and needs the venv python to run the Bader jobs on.
    (Single points only: an AIMD frame's density would need a cube per sampled step, gigabytes for a glass.)"""
    bader = settings.get('bader') or {}
    if not bader.get('enabled'):
        return
    if engine not in BADER_ENGINES or mode != 'single_point':
        raise LabelingInputError(
            f'`bader.enabled` is for single points of {" or ".join(BADER_ENGINES)} (engine `{engine}`, mode '
            f'`{mode}`); label single points, or drop `bader`.'
        )
    if engine == 'cp2k':
        from aiida_glassml.labeling import cp2k

        cp2k.with_density_cube({'FORCE_EVAL': {'DFT': {}}}, bader.get('stride', 1))
    if bader_code is None:
        from aiida_glassml.workflows.analysis import default_code

        try:
            default_code()
        except ValueError as exc:
            raise LabelingInputError(f'`bader.enabled`: {exc}') from None


def validate_max_failure_fraction(value, _port) -> str | None:
    if value is not None and not 0.0 <= value.value <= 1.0:
        return f'`max_failure_fraction` must be between 0 and 1, got {value.value}; 0 fails on any failed structure.'
    return None


def too_many_failures(failed: int, total: int, max_failure_fraction: float) -> bool:
    """More than ``max_failure_fraction`` of ``total`` structures failed (0: any failure is too many)."""
    return failed > 0 and failed > float(max_failure_fraction) * total + 1e-9


def check_teacher_input(engine: str, potential) -> None:
    """The ``potential`` input goes with engine ``potential`` and only with it."""
    if engine == 'potential' and potential is None:
        raise LabelingInputError(
            'engine `potential` needs `potential`: the teacher, an AcePotentialData, MlipPotentialData or '
            'ClassicalPotentialData.'
        )
    if engine != 'potential' and potential is not None:
        raise LabelingInputError(
            f'`potential` is the teacher of engine `potential`, but engine `{engine}` labels with DFT: drop '
            "`potential`, or use engine='potential' to label with the potential."
        )


def check_settings_keys(engine: str, settings: dict) -> None:
    """Raise ProtocolError for a key of ``settings`` that the engine's protocol file does not define (a misspelled
    key would otherwise be ignored silently)."""
    defaults = _protocol_class(engine).get_protocol_inputs()
    try:
        recursive_merge(defaults, settings, strict=True)
    except ProtocolError as exc:
        raise ProtocolError(
            f'`settings`: {exc} Fix the key; the settings of engine `{engine}` are those of '
            f'aiida_glassml/protocols/{PROTOCOL_FILES[engine]}.yaml.'
        ) from exc


class LabelWorkChain(SubmitOnceMixin, ProtocolMixin, WorkChain):
    """Label structures with DFT or a teacher potential. ``mode='aimd'``: NVT MD of each structure, a frame every
    ``aimd.sample_every`` steps. ``mode='single_point'``: energy, forces and stress of each structure.

    DFT: each structure runs in the plugin's base work chain (with our extra handlers, :mod:`.dft_base`). Every CalcJob
    is read, failed ones included, so frames of an MD that stopped early are kept. Engine ``potential`` (single points
    only): one ``PotentialLabelCalculation`` evaluates the ``potential`` input on every structure. Outputs:
    ``training_set`` (one ``TrainingSetData`` with its ``level_of_theory``, built by a calcfunction whose inputs are
    the CalcJobs' outputs) and ``report`` (a ``Dict`` naming every failed calculation and why).
    """

    _protocol_file = 'label_cp2k'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('engine', valid_type=orm.Str, help='`cp2k`, `qe`, `vasp` or `potential` (a teacher potential).')
        spec.input('mode', valid_type=orm.Str, help='`aimd` or `single_point` (`potential`: single_point only).')
        spec.input('code', valid_type=orm.AbstractCode,
                   help='Code of the engine (cp2k, quantumespresso.pw, vasp.vasp; the venv python `glassml-python` '
                        'for `potential`).')  # fmt: skip
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, help='Structures to label.')
        spec.input('settings', valid_type=orm.Dict, help='Protocol inputs (see label_<engine>.yaml).')
        spec.input('pseudo_family', valid_type=orm.Str, required=False, help='aiida-pseudo family label (qe).')
        spec.input('potential_family', valid_type=orm.Str, required=False, help='POTCAR family (vasp).')
        spec.input('potential', valid_type=(AcePotentialData, MlipPotentialData, ClassicalPotentialData),
                   required=False, help='The teacher of engine `potential` (an ACE potential, an MLIP or a classical '
                                        'potential); refused for DFT engines.')  # fmt: skip
        spec.input('max_failure_fraction', valid_type=orm.Float, default=lambda: orm.Float(0.0),
                   validator=validate_max_failure_fraction,
                   help='Fraction of the structures that may fail (no labelled frame, or a failed base work chain) '
                        'before the work chain fails with ERROR_TOO_MANY_FAILED_STRUCTURES; 0 (default): any.')
        spec.input('bader_code', valid_type=orm.AbstractCode, required=False,
                   help='The venv python the Bader jobs run on (settings `bader.enabled`); default '
                        'glassml-python@localhost.')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.outline(cls.setup, cls.run_labelling, if_(cls.should_run_bader)(cls.run_bader), cls.collect_frames)
        spec.output('training_set', valid_type=TrainingSetData, required=False, help='Every successful frame.')
        spec.output('report', valid_type=orm.Dict, help='Failed calculations and why; frames per calculation.')
        spec.exit_code(300, 'ERROR_NO_FRAMES', message='No calculation produced a labelled frame: see `report`.')
        spec.exit_code(301, 'ERROR_TOO_MANY_FAILED_STRUCTURES',
                       message='{failed} of {total} structures failed, more than max_failure_fraction={limit} allows: '
                               'see `report`; every frame that was labelled is in `training_set`.')  # fmt: skip

    # ------------------------------------------------------------------------------------------------ protocols
    @classmethod
    def get_protocol_inputs(cls, protocol=None, overrides=None, engine: str = 'cp2k') -> dict:
        return _protocol_class(engine).get_protocol_inputs(protocol, overrides)

    @classmethod
    def get_available_protocols(cls, engine: str = 'cp2k') -> dict:
        return _protocol_class(engine).get_available_protocols()

    @classmethod
    def get_default_protocol(cls, engine: str = 'cp2k') -> str:
        return _protocol_class(engine).get_default_protocol()

    @classmethod
    def get_builder_from_protocol(
        cls, code, structures, engine: str = 'cp2k', mode: str = 'aimd', protocol: str | None = None,
        overrides: dict | pathlib.Path | None = None, pseudo_family: str | None = None,
        potential_family: str | None = None, potential=None,
    ):  # fmt: skip
        """A builder with every input set. Raises ``ProtocolError`` (unknown protocol, misspelled override) or
        ``LabelingInputError`` (bad settings, element not covered by the basis/pseudopotential/POTCAR set or by the
        teacher ``potential``) before anything is stored. ``structures``: a list or a dict label -> StructureData.
        ``potential`` (engine ``potential`` only): an AcePotentialData or ClassicalPotentialData."""
        validation.validate_engine_and_mode(engine, mode)
        if isinstance(code, str):
            code = orm.load_code(code)
        if not isinstance(structures, dict):
            structures = {f'structure_{index:04d}': s for index, s in enumerate(structures)}
        validation.validate_structures(structures)
        check_teacher_input(engine, potential)
        settings = cls.get_protocol_inputs(protocol, overrides, engine=engine)
        if mode == 'aimd':
            validation.validate_aimd(settings['aimd'])
        symbols = sorted({kind.symbol for s in structures.values() for kind in s.kinds})
        family = pseudo_family or potential_family
        check_element_coverage(engine, symbols, settings, family, potential=potential,
                               structures=list(structures.values()))  # fmt: skip

        builder = cls.get_builder()
        builder.engine = orm.Str(engine)
        builder.mode = orm.Str(mode)
        builder.code = code
        builder.structures = structures
        builder.settings = orm.Dict(settings)
        if pseudo_family:
            builder.pseudo_family = orm.Str(pseudo_family)
        if potential_family:
            builder.potential_family = orm.Str(potential_family)
        if potential is not None:
            builder.potential = potential
        return builder

    # ------------------------------------------------------------------------------------------------ outline
    def setup(self):
        self.ctx.engine = self.inputs.engine.value
        self.ctx.mode = self.inputs.mode.value
        self.ctx.settings = self.inputs.settings.get_dict()
        self.ctx.labels = sorted(self.inputs.structures)

    def run_labelling(self):
        if self.ctx.engine == 'potential':
            return self.run_teacher()
        futures = {}
        for label in self.ctx.labels:
            structure = self.inputs.structures[label]
            process, inputs = child_inputs(
                self.ctx.engine, self.ctx.mode, self.inputs.code, structure, self.ctx.settings,
                family=(self.inputs.pseudo_family.value if 'pseudo_family' in self.inputs else
                        self.inputs.potential_family.value if 'potential_family' in self.inputs else None),
            )  # fmt: skip
            inputs['metadata'] = {'call_link_label': f'label_{label}'}
            futures[f'label_{label}'] = self.submit(process, **inputs)
            self.report(f'submitted {process.__name__}<{futures[f"label_{label}"].pk}> ({self.ctx.mode}) for {label}')
        return ToContext(**futures)

    def run_teacher(self):
        """One PotentialLabelCalculation for every structure: a potential evaluates fast, a job per structure would
        only add overhead."""
        from aiida_glassml.calculations.potential_label import PotentialLabelCalculation

        potential = self.inputs.potential
        inputs = {
            'code': self.inputs.code, 'structures': dict(self.inputs.structures), 'potential': potential,
            'metadata': {'options': dict(self.ctx.settings['options']), 'call_link_label': 'label_teacher'},
        }  # fmt: skip
        node = self.submit(PotentialLabelCalculation, **inputs)
        self.report(f'submitted PotentialLabelCalculation<{node.pk}> for {len(self.ctx.labels)} structures: labels from '
                    f'{type(potential).__name__}<{potential.pk}> ({potential.uuid}), a teacher potential, not DFT')
        return ToContext(label_teacher=node)

    def should_run_bader(self):
        return bool((self.ctx.settings.get('bader') or {}).get('enabled'))

    def run_bader(self):
        """A BaderCalculation on the density of each structure's last successful DFT calculation."""
        from aiida_glassml.calculations.bader import BaderCalculation

        code = self.inputs.bader_code if 'bader_code' in self.inputs else None
        if code is None:
            from aiida_glassml.workflows.analysis import default_code

            code = default_code()
        futures = {}
        for label in self.ctx.labels:
            calc = last_successful_calcjob(self.ctx[f'label_{label}'])
            found = density_source(self.ctx.engine, calc) if calc is not None else None
            if found is None:
                self.report(f'no charge density of {label}: no Bader charges for it')
                continue
            folder, filename = found
            structure = calc.inputs.structure
            inputs = {
                'code': code, 'density': folder, 'density_filename': orm.Str(filename), 'structure': structure,
                'valences': orm.Dict(self.bader_valences(structure)),
                'metadata': {'call_link_label': f'bader_{label}', 'options': dict(self.ctx.settings['options'])},
            }  # fmt: skip
            futures[f'bader_{label}'] = self.submit(BaderCalculation, **inputs)
            self.report(f'submitted BaderCalculation<{futures[f"bader_{label}"].pk}> for {label}')
        return ToContext(**futures)

    def bader_valences(self, structure) -> dict:
        """Z_val per element: ``bader.valences``, else the pseudopotentials' (CP2K GTH q, VASP POTCAR ZVAL)."""
        symbols = sorted({kind.symbol for kind in structure.kinds})
        given = self.ctx.settings['bader'].get('valences') or {}
        if self.ctx.engine == 'cp2k':
            from aiida_glassml.labeling import cp2k

            found = cp2k.valence_charges(symbols, self.ctx.settings['cp2k'])
        else:
            found = potcar_valences(self.inputs.potential_family.value, symbols, self.ctx.settings['vasp'])
        return {element: float(given.get(element, found[element])) for element in symbols}

    def collect_frames(self):
        sources, plan = {}, {'engine': self.ctx.engine, 'mode': self.ctx.mode, 'settings': self.ctx.settings,
                             'calculations': {}, 'failed_workchains': {}, 'structures': list(self.ctx.labels),
                             'max_failure_fraction': self.inputs.max_failure_fraction.value}  # fmt: skip
        if self.ctx.engine == 'potential':
            calc = self.ctx.label_teacher
            nodes = frame_sources('potential', calc)
            sources.update({f'teacher__00__{name}': node for name, node in nodes.items()})
            plan['calculations']['teacher__00'] = {
                'structure': ', '.join(self.ctx.labels), 'structures': list(self.ctx.labels), 'order': 0,
                'pk': calc.pk, 'uuid': calc.uuid, 'exit_status': calc.exit_status, 'exit_message': calc.exit_message,
                'finished_ok': calc.is_finished_ok, 'sources': sorted(nodes),
            }  # fmt: skip
        else:
            for label in self.ctx.labels:
                workchain = self.ctx[f'label_{label}']
                if not workchain.is_finished_ok:
                    plan['failed_workchains'][label] = {
                        'pk': workchain.pk, 'uuid': workchain.uuid, 'exit_status': workchain.exit_status,
                        'exit_message': workchain.exit_message,
                    }  # fmt: skip
                calcs = sorted(
                    (n for n in workchain.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime
                )
                for order, calc in enumerate(calcs):
                    key = f'{label}__{order:02d}'
                    nodes = frame_sources(self.ctx.engine, calc)
                    for name, node in nodes.items():
                        sources[f'{key}__{name}'] = node
                    plan['calculations'][key] = {
                        'structure': label, 'order': order, 'pk': calc.pk, 'uuid': calc.uuid,
                        'exit_status': calc.exit_status, 'exit_message': calc.exit_message,
                        'finished_ok': calc.is_finished_ok, 'sources': sorted(nodes),
                    }  # fmt: skip
        if self.ctx.mode == 'single_point':
            for label in self.ctx.labels:
                sources[f'{label}__structure'] = self.inputs.structures[label]
        if self.should_run_bader():
            self.add_bader_sources(sources, plan)
        try:
            plan['level_of_theory'] = self.level_of_theory()
        except Exception as exc:  # noqa: BLE001 - labels that cost DFT time are never lost over their record
            self.report(f'the level of theory could not be recorded ({exc}); the training set records None (unknown)')
            plan['level_of_theory'] = None
        results = collect_training_set(plan=orm.Dict(plan), **sources)
        self.out('report', results['report'])
        report = results['report'].get_dict()
        for failure in report['failed']:
            self.report(f'failed: {failure["what"]} for {failure["structure"]}: {failure["why"]}')
        if report['n_unconverged_scf']:
            self.report(f'{report["n_unconverged_scf"]} frames with an unconverged SCF dropped: '
                        f'{report["unconverged_scf_steps"]}')  # fmt: skip
        if 'training_set' not in results:
            return self.exit_codes.ERROR_NO_FRAMES
        self.out('training_set', results['training_set'])
        self.report(f'{results["training_set"].n_frames} frames from {len(plan["calculations"])} calculations')
        failed = report['failed_structures']
        if too_many_failures(len(failed), report['n_structures'], self.inputs.max_failure_fraction.value):
            return self.exit_codes.ERROR_TOO_MANY_FAILED_STRUCTURES.format(
                failed=len(failed), total=report['n_structures'], limit=self.inputs.max_failure_fraction.value
            )  # fmt: skip
        return None

    def add_bader_sources(self, sources: dict, plan: dict) -> None:
        """The Bader charges of each finished BaderCalculation, as a source of the calculation whose density it split;
        failed ones go to the plan (and so to the report)."""
        by_uuid = {calc['uuid']: key for key, calc in plan['calculations'].items()}
        plan['bader_failed'] = {}
        for label in self.ctx.labels:
            if f'bader_{label}' not in self.ctx:
                continue
            bader = self.ctx[f'bader_{label}']
            if not bader.is_finished_ok:
                plan['bader_failed'][label] = {'pk': bader.pk, 'uuid': bader.uuid, 'exit_status': bader.exit_status,
                                               'exit_message': bader.exit_message}  # fmt: skip
                self.report(f'BaderCalculation<{bader.pk}> of {label} failed: {bader.exit_message}')
                continue
            density_calc = bader.inputs.density.creator
            key = by_uuid.get(density_calc.uuid) if density_calc is not None else None
            if key is None:
                continue
            sources[f'{key}__bader_charges'] = bader.outputs.charges
            plan['calculations'][key]['sources'].append('bader_charges')
            settings = density_calc.inputs.settings.get_dict() if 'settings' in density_calc.inputs else {}
            plan['calculations'][key]['atom_order'] = settings.get('glassml_atom_order')

    def level_of_theory(self) -> dict:
        """The level of theory of this run's labels (:mod:`aiida_glassml.labeling.level_of_theory`)."""
        structures = [self.inputs.structures[label] for label in self.ctx.labels]
        family = (self.inputs.pseudo_family.value if 'pseudo_family' in self.inputs else
                  self.inputs.potential_family.value if 'potential_family' in self.inputs else None)  # fmt: skip
        calcs = ([self.ctx.label_teacher] if self.ctx.engine == 'potential' else
                 [n for label in self.ctx.labels for n in self.ctx[f'label_{label}'].called_descendants
                  if isinstance(n, orm.CalcJobNode)])  # fmt: skip
        return level_of_theory_for(
            self.ctx.engine, self.ctx.settings, structures, self.inputs.code, family=family,
            potential=self.inputs.get('potential'), calcs=calcs,
        )  # fmt: skip


@calcfunction
def collect_training_set(plan: orm.Dict, **sources):
    """One ``TrainingSetData`` from the CalcJobs' output nodes, and a report of what failed and why. The set's
    ``level_of_theory`` is ``plan['level_of_theory']`` (None when the plan has none: unknown)."""
    from aiida_glassml.common.frames import FrameSet
    from aiida_glassml.labeling import frames as frame_tools

    plan = plan.get_dict()
    engine, mode, settings = plan['engine'], plan['mode'], plan['settings']
    aimd = settings.get('aimd', {})
    sample_type = settings.get('sample_type') or mode
    failed, per_calc, by_structure = [], {}, {}
    for key, calc in sorted(plan['calculations'].items()):
        nodes = {name: sources[f'{key}__{name}'] for name in calc['sources']}
        if engine == 'potential':  # one CalcJob labels every structure
            structure = {label: sources[f'{label}__structure'] for label in calc['structures']}
        else:
            structure = sources.get(f'{calc["structure"]}__structure')
        try:
            frames = frames_from_nodes(engine, mode, nodes, structure, settings)
        except Exception as exc:  # noqa: BLE001 - an unreadable output is reported, not fatal for the others
            frames = []
            failed.append({'what': f'CalcJob<{calc["pk"]}>', 'structure': calc['structure'], 'uuid': calc['uuid'],
                           'why': f'frames could not be read: {exc}', 'frames_kept': 0})  # fmt: skip
        if 'bader_charges' in nodes and len(frames) == 1:  # single points: one frame per calculation
            charges = nodes['bader_charges'].get_array('charges')
            if calc.get('atom_order') is not None:  # VASP ran on the kinds grouped
                from aiida_glassml.labeling import vasp

                charges = vasp.restore_atom_order(charges, calc['atom_order'])
            frames[0]['bader_charges'] = charges
        if calc['finished_ok'] and not frames:
            failed.append({
                'what': f'CalcJob<{calc["pk"]}>', 'structure': calc['structure'], 'uuid': calc['uuid'],
                'why': 'finished without a labelled frame (e.g. the first SCF did not converge)', 'frames_kept': 0,
            })  # fmt: skip
        elif not calc['finished_ok']:
            failed.append({
                'what': f'CalcJob<{calc["pk"]}>', 'structure': calc['structure'], 'uuid': calc['uuid'],
                'why': f'exit status {calc["exit_status"]}: {calc["exit_message"]}', 'frames_kept': None,
            })  # fmt: skip
        for frame in frames:
            symbols = frame['symbols']
            frame['metadata'] = {
                **frame.get('metadata', {}), 'source_uuid': calc['uuid'], 'sample_type': sample_type,
                'temperature': float(aimd['temperature']) if mode == 'aimd' else None,
                'iteration': settings.get('iteration'), 'composition': frame_tools.composition_formula(symbols),
            }  # fmt: skip
        if engine == 'potential':
            for frame in frames:
                by_structure.setdefault(frame['metadata'].pop('structure'), []).append([frame])
        else:
            by_structure.setdefault(calc['structure'], []).append(frames)
    for label, info in sorted(plan.get('bader_failed', {}).items()):
        failed.append({'what': f'BaderCalculation<{info["pk"]}>', 'structure': label, 'uuid': info['uuid'],
                       'why': f'exit status {info["exit_status"]}: {info["exit_message"]} (frame kept without Bader '
                              'charges)', 'frames_kept': None})  # fmt: skip
    for label, info in sorted(plan['failed_workchains'].items()):
        failed.append({'what': f'WorkChain<{info["pk"]}>', 'structure': label, 'uuid': info['uuid'],
                       'why': f'exit status {info["exit_status"]}: {info["exit_message"]}', 'frames_kept': None})  # fmt: skip
    uuid_to_key = {calc['uuid']: key for key, calc in plan['calculations'].items()}
    all_frames, unconverged, kept_per_structure = [], {}, {}
    for label in sorted(by_structure):
        if mode == 'aimd' and engine in STEPS_PER_CALCJOB:
            # Steps are numbered inside each CalcJob: number them over the chain of restarts, then sample.
            kept = frame_tools.continue_restarted_steps(by_structure[label], int(aimd.get('sample_every', 1)))
        else:
            kept = frame_tools.unique_steps(by_structure[label])  # CP2K: steps (and sampling) from its files
        # After numbering (restarts are matched by the positions of every step): an SCF that hit its limit is no label.
        kept, dropped = frame_tools.split_unconverged(kept)
        for frame in dropped:
            key = uuid_to_key[frame['metadata']['source_uuid']]
            unconverged.setdefault(key, []).append(frame['metadata'].get('step'))
        kept_per_structure[label] = len(kept)
        for frame in kept:
            frame['metadata'].pop('step', None)
            all_frames.append(frame)
    per_calc = {key: 0 for key in plan['calculations']}
    for frame in all_frames:
        per_calc[uuid_to_key[frame['metadata']['source_uuid']]] += 1
    for failure in failed:
        if failure['frames_kept'] is None and failure['what'].startswith('CalcJob'):
            failure['frames_kept'] = per_calc[uuid_to_key[failure['uuid']]]
    level = plan.get('level_of_theory')
    # A structure failed when its base work chain failed or it gave no labelled frame (its frames, if any, are kept).
    structures = plan.get('structures') or sorted({c['structure'] for c in plan['calculations'].values()})
    failed_structures = sorted(label for label in structures
                               if label in plan['failed_workchains'] or not kept_per_structure.get(label))  # fmt: skip
    report = {
        'engine': engine, 'mode': mode, 'n_frames': len(all_frames), 'n_calculations': len(plan['calculations']),
        'frames_per_calculation': per_calc, 'failed': failed, 'level_of_theory': level,
        # Frames dropped because their SCF stopped at the iteration limit: calculation -> MD steps (over restarts).
        'unconverged_scf_steps': unconverged, 'n_unconverged_scf': sum(len(steps) for steps in unconverged.values()),
        'n_structures': len(structures), 'failed_structures': failed_structures,
        'failure_fraction': len(failed_structures) / len(structures) if structures else 0.0,
        'max_failure_fraction': plan.get('max_failure_fraction', 0.0),
    }  # fmt: skip
    if engine == 'potential' and level:
        report['teacher'] = (f'labels from the {level["potential_type"]} potential {level["potential_uuid"]} '
                             '(a teacher), not from DFT')  # fmt: skip
    results = {'report': orm.Dict(report)}
    if all_frames:
        results['training_set'] = TrainingSetData(FrameSet.from_frames(all_frames), level_of_theory=level)
    return results



# ------------------------------------------------------------------------------------------------ engine glue
# Everything engine-specific that needs AiiDA: coverage checks, child work chain inputs, and which output nodes of a
# CalcJob hold its frames. The science (input rendering, parsing) is in aiida_glassml.labeling.
def check_element_coverage(engine: str, symbols: list[str], settings: dict, family: str | None, potential=None,
                           structures=None) -> None:  # fmt: skip
    """Raise LabelingInputError naming elements without a basis/pseudopotential (CP2K), a pseudopotential in the
    aiida-pseudo family (QE), a POTCAR in the family (VASP) or parameters in the teacher ``potential``
    (``structures`` give a classical potential's species by kind name)."""
    if engine == 'potential':
        from aiida_glassml.calculations.potential_label import check_potential_covers
        from aiida_glassml.labeling import potential as teacher

        check_teacher_input(engine, potential)
        if structures:
            check_potential_covers(potential, structures)
        else:
            teacher.check_covers(potential.elements, symbols, f'the potential <{potential.uuid}>')
    elif engine == 'cp2k':
        from aiida_glassml.labeling import cp2k

        block = settings['cp2k']
        cp2k.select_basis_and_potential(
            symbols, block['basis'], block['xc'], block['data_dir'], block['basis_file'], block['potential_file']
        )
        cp2k.check_settings(settings, {f'structure {i}' + (f' ({s.label})' if s.label else ''): s.cell
                                       for i, s in enumerate(structures or [])})  # fmt: skip
    elif engine == 'qe':
        from aiida.common.exceptions import NotExistent

        from aiida_glassml.labeling import qe

        try:
            elements = orm.load_group(family).elements if family else None
        except NotExistent:
            elements = None
        qe.check_pseudo_family(symbols, family, elements)
    elif engine == 'vasp':
        from aiida_glassml.labeling import vasp

        available = None
        if family:
            groups = orm.QueryBuilder().append(orm.Group, filters={'label': family}).all(flat=True)
            if groups:
                available = [node.base.attributes.get('full_name', '') for node in groups[0].nodes]
        vasp.check_potcar_family(symbols, family, settings['vasp'], available)


def child_inputs(engine: str, mode: str, code, structure, settings: dict, family: str | None = None):
    """(process class, inputs) of the base work chain labelling one structure."""
    options = dict(settings['options'])
    if engine == 'cp2k':
        from aiida_glassml.labeling import cp2k
        from aiida_glassml.workflows.dft_base import LabelCp2kBaseWorkChain

        kind_names = [site.kind_name for site in structure.sites]
        symbols = [structure.get_kind(name).symbol for name in kind_names]
        parameters = cp2k.build_cp2k_parameters(symbols, settings['cp2k'], mode, settings.get('aimd'), kind_names)
        extra = {}
        if (settings.get('bader') or {}).get('enabled'):
            parameters = cp2k.with_density_cube(parameters, settings['bader'].get('stride', 1))
            extra['settings'] = orm.Dict({'additional_retrieve_list': [cp2k.DENSITY_CUBE_FILE]})
        inputs = {
            'cp2k': {'code': code, 'structure': structure, 'parameters': orm.Dict(parameters),
                     'metadata': {'options': options}, **extra},
            'max_iterations': orm.Int(settings['max_iterations']),
            'clean_workdir': orm.Bool(settings['clean_workdir']),
        }  # fmt: skip
        return LabelCp2kBaseWorkChain, inputs
    if engine == 'qe':
        return _qe_child_inputs(mode, code, structure, settings, family, options)
    if engine == 'vasp':
        return _vasp_child_inputs(mode, code, structure, settings, family, options)
    raise LabelingInputError(f'unknown engine `{engine}`.')


def last_successful_calcjob(workchain) -> orm.CalcJobNode | None:
    """The last CalcJob of a base work chain that finished ok (a single point's labels come from it), or None."""
    calcs = sorted((n for n in workchain.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime)
    finished = [calc for calc in calcs if calc.is_finished_ok]
    return finished[-1] if finished else None


def density_source(engine: str, calc: orm.CalcJobNode) -> tuple[orm.FolderData, str] | None:
    """(retrieved folder, file name) of the charge density ``calc`` wrote for the Bader charges, or None."""
    from aiida_glassml.labeling import cp2k, vasp

    filename = {'cp2k': cp2k.DENSITY_CUBE_FILE, 'vasp': vasp.CHGCAR_FILE}[engine]
    if 'retrieved' not in calc.outputs or filename not in calc.outputs.retrieved.base.repository.list_object_names():
        return None
    return calc.outputs.retrieved, filename


def potcar_valences(family: str, symbols, settings: dict) -> dict[str, float]:
    """ZVAL per element of the POTCARs of ``family`` that the ``vasp`` settings map the elements to."""
    from aiida_glassml.labeling import vasp

    mapping = vasp.potential_mapping(symbols, settings)
    nodes = {node.base.attributes.get('full_name', ''): node for node in orm.load_group(family).nodes}
    return {element: vasp.potcar_zval(nodes[mapping[element]].get_content().decode(errors='replace'))
            for element in symbols}  # fmt: skip


def frame_sources(engine: str, calc: orm.CalcJobNode) -> dict[str, orm.Data]:
    """The output nodes of ``calc`` its frames are read from (they become inputs of ``collect_training_set``)."""
    outputs = calc.outputs
    if engine == 'potential':
        return {'labels': outputs.labels} if 'labels' in outputs else {}
    if engine == 'cp2k':
        return {'retrieved': outputs.retrieved} if 'retrieved' in outputs else {}
    if engine == 'qe':
        nodes = {name: outputs[name] for name in ('output_trajectory', 'output_parameters') if name in outputs}
        # The pw.x input: its electron_maxstep and conv_thr tell an unconverged SCF (restarts may change them).
        return {**nodes, 'input_parameters': calc.inputs.parameters} if nodes else {}
    names = ('trajectory', 'misc', 'retrieved')  # retrieved: OUTCAR, for the moments of every ionic step
    return {name: outputs[name] for name in names if name in outputs}


def frames_from_nodes(engine: str, mode: str, nodes: dict, structure, settings: dict) -> list[dict]:
    """Labelled frames (eV, Å) from one CalcJob's output nodes; ``structure``: the input (single points; for engine
    ``potential`` a dict label -> StructureData of every structure, each frame's label in ``metadata['structure']``)."""
    if engine == 'potential':
        from aiida_glassml.labeling import potential as teacher

        if 'labels' not in nodes:
            return []
        labels = nodes['labels']
        arrays = {name: labels.get_array(name) for name in teacher.LABEL_ARRAYS}
        frames = []
        for label, values in zip(labels.base.attributes.get('labels'), teacher.split_labels(arrays)):
            frame = {**_structure_dict(structure[label]), **values, 'pbc': structure[label].pbc}
            frame['metadata'] = {'structure': label}
            frames.append(frame)
        return frames
    if engine == 'cp2k':
        from aiida_glassml.labeling import cp2k

        if 'retrieved' not in nodes:
            return []
        retrieved = nodes['retrieved']
        names = set(retrieved.base.repository.list_object_names())
        files = {name: retrieved.base.repository.get_object_content(name)
                 for name in (cp2k.OUTPUT_FILE, cp2k.POS_FILE, cp2k.FRC_FILE, cp2k.CELL_FILE) if name in names}  # fmt: skip
        reference = _structure_dict(structure) if structure is not None else None
        return cp2k.frames_from_cp2k(files, mode, reference)
    if engine == 'qe':
        from aiida_glassml.labeling import qe

        if 'output_trajectory' not in nodes:
            return []
        trajectory = nodes['output_trajectory']
        arrays = {name: trajectory.get_array(name) for name in trajectory.get_arraynames()}
        parameters = nodes['output_parameters'].get_dict() if 'output_parameters' in nodes else {}
        if 'input_parameters' in nodes:
            pw_input = nodes['input_parameters'].get_dict()
        else:  # a plan without the pw.x input: the protocol's values
            block = settings.get('qe', {})
            pw_input = {'ELECTRONS': {'electron_maxstep': block.get('electron_maxstep', 80),
                                      'conv_thr': float(block.get('conv_thr_per_atom', 0)) * len(trajectory.symbols)
                                      or qe.PW_DEFAULT_CONV_THR}}  # fmt: skip
        # Every step: collect_training_set numbers the steps over restarts, then samples.
        return qe.frames_from_pw_arrays(arrays, list(trajectory.symbols), parameters, mode, sample_every=1,
                                        input_parameters=pw_input)  # fmt: skip
    return _vasp_frames(nodes, mode, settings)


def level_of_theory_for(engine: str, settings: dict, structures, code, family: str | None = None, potential=None,
                        calcs=()) -> dict:  # fmt: skip
    """The level of theory of labels made by ``engine`` with ``settings`` on ``structures`` (``calcs``: the CalcJobs
    that ran, read for the program version)."""
    elements = sorted({kind.symbol for s in structures for kind in s.kinds})
    code_record = _code_record(engine, code, calcs)
    if engine == 'potential':
        kind = {AcePotentialData: 'ace', MlipPotentialData: 'mlip'}.get(type(potential), 'classical')
        return lot.potential_level(
            kind, potential.uuid, label=potential.label or None,
            sha256=potential.base.attributes.get('sha256_yaml') if kind == 'ace' else None,
            name=potential.name if kind == 'classical' else None, code=code_record,
            mlip=_mlip_record(potential) if kind == 'mlip' else None,
        )  # fmt: skip
    if engine == 'cp2k':
        return lot.cp2k_level(settings, elements, code_record)
    if engine == 'qe':
        from aiida_glassml.labeling import qe

        group = orm.load_group(family)
        pseudos = {e: f'{group.get_pseudo(e).filename} (md5 {group.get_pseudo(e).md5})' for e in elements}
        cutoffs = [qe.select_cutoffs(settings['qe'], recommended_cutoffs(group, s)) for s in structures]
        return lot.qe_level(settings, elements, family, pseudos, cutoffs, code_record)
    return lot.vasp_level(settings, elements, family, code_record)


def _mlip_record(potential: MlipPotentialData) -> dict:
    """What an MLIP teacher's labels rest on: its calculator and keywords, the weights (sha256 of the stored model file
    or of the shipped weights, and which shipped model) and the package version."""
    attributes = potential.base.attributes
    shipped = attributes.get('shipped_model', None) or {}
    return {
        'calculator': potential.calculator, 'calculator_kwargs': dict(attributes.get('kwargs') or {}),
        'model_sha256': attributes.get('sha256_model', None) or shipped.get('sha256'),
        'shipped_model': f'{shipped["family"]} {shipped["name"]}' if shipped else None,
        'package': attributes.get('package', None), 'package_version': potential.package_version,
    }  # fmt: skip


def _code_record(engine: str, code, calcs) -> dict:
    """Which code made the labels: label, executable, plugin version and, when its outputs say, the program version.
    Recorded, not compared."""
    from importlib.metadata import PackageNotFoundError, version

    record = {'label': code.full_label}
    if isinstance(code, orm.InstalledCode):
        record['executable'] = str(code.filepath_executable)
    try:
        record['plugin'] = f'{PLUGINS[engine]} {version(PLUGINS[engine])}'
    except PackageNotFoundError:
        record['plugin'] = PLUGINS[engine]
    for calc in calcs:
        for name, keys in (('output_parameters', ('cp2k_version', 'creator_version')), ('misc', ('version',)),
                           ('results', ('versions',))):  # fmt: skip
            if name in calc.outputs:
                found = [calc.outputs[name].get(key) for key in keys if calc.outputs[name].get(key) is not None]
                if found:
                    record['version'] = found[0]
                    return record
    return record


def _structure_dict(structure) -> dict:
    return {
        'symbols': [structure.get_kind(site.kind_name).symbol for site in structure.sites],
        'positions': [site.position for site in structure.sites],
        'cell': structure.cell,
    }


def _qe_child_inputs(mode, code, structure, settings, family, options):
    from aiida_glassml.labeling import qe
    from aiida_glassml.workflows.dft_base import LabelPwBaseWorkChain

    kind_names = [site.kind_name for site in structure.sites]
    symbols = [structure.get_kind(name).symbol for name in kind_names]
    pseudo_family = orm.load_group(family)
    pseudos = pseudo_family.get_pseudos(structure=structure)
    valences = {structure.get_kind(kind).symbol: pseudo.z_valence for kind, pseudo in pseudos.items()}
    parameters = qe.build_pw_parameters(
        symbols, settings['qe'], mode, settings.get('aimd'), recommended_cutoffs(pseudo_family, structure),
        kind_names=kind_names, valences=valences,
    )  # fmt: skip
    kpoints = orm.KpointsData()
    kpoints.set_kpoints_mesh([1, 1, 1])
    inputs = {
        'pw': {
            'code': code, 'structure': structure, 'parameters': orm.Dict(parameters),
            'pseudos': pseudos,
            'settings': orm.Dict({'gamma_only': True}), 'metadata': {'options': options},
        },
        'kpoints': kpoints,
        'max_iterations': orm.Int(settings['max_iterations']),
        'clean_workdir': orm.Bool(settings['clean_workdir']),
    }  # fmt: skip
    return LabelPwBaseWorkChain, inputs


def recommended_cutoffs(family, structure) -> tuple[float, float] | None:
    """(ecutwfc, ecutrho) in Ry that an aiida-pseudo family with cutoffs (SSSP, PseudoDojo, or any family with
    ``set_cutoffs``) recommends for ``structure``, at its default stringency; None for a family without cutoffs."""
    from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily

    if not isinstance(family, CutoffsPseudoPotentialFamily) or not family.get_cutoff_stringencies():
        return None
    return family.get_recommended_cutoffs(structure=structure, unit='Ry')


def _vasp_child_inputs(mode, code, structure, settings, family, options):
    from aiida.plugins import WorkflowFactory

    from aiida_glassml.calcfunctions.vasp_order import group_kinds
    from aiida_glassml.labeling import vasp

    # aiida-vasp writes POSCAR/POTCAR per run of equal kinds: VASP runs on the kinds grouped (a calcfunction, for the
    # provenance), and `glassml_atom_order` in `settings` (kept over restarts) maps the frames back.
    order = vasp.species_sort_order([site.kind_name for site in structure.sites])
    grouped = order != list(range(len(order)))
    if grouped:
        structure = group_kinds(structure)
    kinds = [site.kind_name for site in structure.sites]
    symbols = [structure.get_kind(kind).symbol for kind in kinds]
    incar = vasp.build_incar(symbols, settings['vasp'], mode, settings.get('aimd'), kinds=kinds, cell=structure.cell)
    bader = bool((settings.get('bader') or {}).get('enabled'))
    if bader:  # the charge density for the Bader charges
        incar['lcharg'] = True
    mapping = vasp.potential_mapping(symbols, settings['vasp'])
    kpoints = orm.KpointsData()
    kpoints.set_kpoints_mesh([1, 1, 1])
    inputs = {
        'code': code, 'structure': structure, 'kpoints': kpoints,
        'parameters': orm.Dict({'incar': incar}),
        'potential_family': orm.Str(family),
        'potential_mapping': orm.Dict({kind.name: mapping[kind.symbol] for kind in structure.kinds}),
        # MD and single points have no ionic convergence to check; per-step energies and forces come with `trajectory`.
        # VaspWorkChain reads the top-level key: an MD that runs all NSW steps is no unconverged relaxation.
        'settings': orm.Dict({'parser_settings': {
            'include_node': ['trajectory'], 'energy_type': ['energy_free', vasp.ENERGY_TYPE],
            'check_ionic_convergence': False,
        }, 'CHECK_IONIC_CONVERGENCE': False, **({'glassml_atom_order': order} if grouped else {}),
            **({'ADDITIONAL_RETRIEVE_LIST': [vasp.CHGCAR_FILE]} if bader else {})}),
        'calc': {'metadata': {'options': options}},
        'max_iterations': orm.Int(settings['max_iterations']),
        'clean_workdir': orm.Bool(settings['clean_workdir']),
    }  # fmt: skip
    return WorkflowFactory('vasp.vasp'), inputs


def _vasp_frames(nodes: dict, mode: str, settings: dict) -> list[dict]:
    """Frames from aiida-vasp's ``trajectory`` output (vasprun.xml: fractional positions, kbar stress), with the
    energy σ→0 (``vasp.ENERGY_TYPE``), atoms in the order of the structure given to ``LabelWorkChain``."""
    import numpy as np

    from aiida_glassml.labeling import vasp

    if 'trajectory' not in nodes:
        return []
    trajectory = nodes['trajectory']
    names = trajectory.get_arraynames()
    if vasp.ENERGY_TYPE not in names:
        raise LabelingInputError(f'the VASP trajectory has no `{vasp.ENERGY_TYPE}` (energy sigma->0): parse it with '
                                 f"parser_settings energy_type [..., '{vasp.ENERGY_TYPE}'].")  # fmt: skip
    calc = trajectory.creator
    run_settings = calc.inputs.settings.get_dict() if calc is not None and 'settings' in calc.inputs else {}
    order = run_settings.get('glassml_atom_order')  # None: VASP ran on the structure as given
    cells = trajectory.get_array('cells')
    positions = np.einsum('sij,sjk->sik', trajectory.get_array('positions'), cells)
    energy_key = vasp.ENERGY_TYPE
    n_atoms = positions.shape[1]
    moments = None
    retrieved = nodes.get('retrieved')
    if retrieved is not None and 'OUTCAR' in retrieved.base.repository.list_object_names():
        per_step = vasp.parse_outcar_magnetizations(retrieved.base.repository.get_object_content('OUTCAR'))
        per_step = [m for m in per_step if len(m) == n_atoms]
        moments = np.array(per_step) if per_step else None
    frames = vasp.frames_from_vasp_arrays(
        trajectory.base.attributes.get('symbols'), positions, cells, trajectory.get_array(energy_key),
        trajectory.get_array('forces'), trajectory.get_array('stress') if 'stress' in names else None,
        moments, mode, sample_every=1,  # sampled over the chain of restarts in collect_training_set
        atom_order=order,
    )  # fmt: skip
    if retrieved is not None and 'vasprun.xml' in retrieved.base.repository.list_object_names():
        # a step whose SCF stopped at NELM is no label: collect_training_set drops and counts it
        nelm = calc.inputs.parameters.get_dict().get('incar', {}).get('nelm') if calc is not None else None
        converged = vasp.scf_converged_per_step(retrieved.base.repository.get_object_content('vasprun.xml'), nelm)
        for frame in frames:
            step = frame['metadata']['step']
            frame['scf_converged'] = converged[step] if step < len(converged) else True
    if moments is None and frames:
        # No OUTCAR tables: the plugin's ``misc`` holds the moments of the last ionic step only.
        final = vasp.site_moments_from_misc(nodes['misc'].get_dict() if 'misc' in nodes else {}, n_atoms)
        if final is not None and frames[-1]['metadata']['step'] == len(positions) - 1:
            frames[-1]['magmoms'] = vasp.restore_atom_order(final, order)
    return frames

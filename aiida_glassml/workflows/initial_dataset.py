"""``InitialDatasetWorkChain``: the first stage of active learning. Random glass structures (seeded packings of each
composition, optionally with strained copies) plus any given structures, labelled by high-temperature AIMD, merged
into one ``TrainingSetData``."""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.engine import ToContext, WorkChain

from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.protocols import ProtocolMixin
from aiida_glassml.workflows.label import LabelWorkChain, check_element_coverage
from aiida_glassml.workflows.submit_once import SubmitOnceMixin


def _structure_tools():
    """The structures issue's calcfunctions and pure generator, when that code is present."""
    try:
        from aiida_glassml.calcfunctions import structures as calcfunctions
        from aiida_glassml.structures import generate_random_structure
    except ImportError:
        return None, None
    return calcfunctions, generate_random_structure


def strain_factors(strains) -> list[float] | None:
    """Checked cell-length factors of the strained copies, or None. The packing itself is the 1.0 cell, so a listed
    1.0 makes no copy (it would label the same structure twice)."""
    if not strains:
        return None
    from aiida_glassml.structures.packing import validate_strain_factors

    factors = [factor for factor in validate_strain_factors(strains) if abs(factor - 1.0) > 1e-9]
    return factors or None


def validate_random(value, _):
    if value is None:
        return None
    random = value.get_dict()
    unknown = sorted(set(random) - {'compositions', 'seeds', 'settings', 'strains'})
    if unknown:
        return f'unknown key(s) {unknown} in `random`; allowed: compositions, seeds, settings, strains.'
    if not random.get('compositions'):
        return '`random.compositions` is empty: give {label: {"units": [...], "fractions": [...]}}.'
    try:
        strain_factors(random.get('strains'))
    except ValueError as exc:  # StructureGenerationError
        return f'`random.strains`: {exc}'
    return None


def validate_inputs(inputs, _):
    if not inputs.get('structures') and 'random' not in inputs:
        return 'nothing to label: give `random` compositions, `structures`, or both.'
    return None


class InitialDatasetWorkChain(SubmitOnceMixin, ProtocolMixin, WorkChain):
    """Random structures -> AIMD labelling (``LabelWorkChain``, mode ``aimd``) -> one ``TrainingSetData``."""

    _protocol_file = 'initial_dataset'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('random', valid_type=orm.Dict, required=False, validator=validate_random,
                   help='{compositions: {label: composition}, seeds: [int], settings: {...}, strains: [..] or null}; '
                        'see aiida_glassml.structures.DEFAULT_SETTINGS.')  # fmt: skip
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, required=False,
                             help='Structures labelled as they are, beside the random ones.')  # fmt: skip
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('structures', 'mode'))
        spec.inputs.validator = validate_inputs
        spec.outline(cls.generate_structures, cls.run_labelling, cls.results)
        spec.output('training_set', valid_type=TrainingSetData, help='Every AIMD frame of every structure.')
        spec.output('report', valid_type=orm.Dict, help='The labelling report: failed calculations and why.')
        spec.output_namespace('structures', valid_type=orm.StructureData, dynamic=True, help='Structures labelled.')
        spec.exit_code(301, 'ERROR_STRUCTURE_GENERATION', message='The random structures could not be generated.')
        spec.exit_code(302, 'ERROR_LABELLING_FAILED', message='The labelling work chain produced no frames.')

    @classmethod
    def get_builder_from_protocol(
        cls, code, compositions: dict | None = None, structures: dict | None = None, engine: str = 'cp2k',
        protocol: str | None = None, overrides: dict | pathlib.Path | None = None, pseudo_family: str | None = None,
        potential_family: str | None = None,
    ):  # fmt: skip
        """A builder from ``initial_dataset.yaml``: ``seeds``, ``strains`` and ``structure_settings`` of the random
        packings, ``label_protocol`` and ``label`` (overrides) of the AIMD labelling. ``compositions``: label ->
        composition (see ``aiida_glassml.structures``); ``structures``: label -> StructureData labelled as given.
        Everything is validated (random packings are dry-run, element coverage checked) before anything is stored."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        seeds, strains = [int(seed) for seed in inputs['seeds']], strain_factors(inputs['strains'])
        structure_settings = inputs['structure_settings'] or {}
        _, generate = _structure_tools()
        symbols: set[str] = set()
        if compositions:
            if generate is None:
                raise LabelingInputError(
                    'random structures need aiida_glassml.structures (the structures issue); pass `structures` instead.'
                )
            if not seeds:
                raise LabelingInputError('`seeds` is empty: give at least one seed per random packing, e.g. [1].')
            for composition in compositions.values():
                for seed in seeds:
                    generated = generate(composition, seed, structure_settings)
                    symbols.update(generated.atoms.get_chemical_symbols())
        structures = dict(structures or {})
        for structure in structures.values():
            symbols.update(kind.symbol for kind in structure.kinds)
        if not symbols:
            raise LabelingInputError('nothing to label: give `compositions` (random structures), `structures`, or both.')
        # The label builder validates protocol, overrides and AIMD settings; its structures are not used.
        probe = orm.StructureData(cell=[[5, 0, 0], [0, 5, 0], [0, 0, 5]])
        probe.append_atom(position=(0, 0, 0), symbols=sorted(symbols)[0])
        label = LabelWorkChain.get_builder_from_protocol(
            code, {'probe': probe}, engine=engine, mode='aimd', protocol=inputs['label_protocol'],
            overrides=inputs['label'], pseudo_family=pseudo_family, potential_family=potential_family,
        )  # fmt: skip
        check_element_coverage(engine, sorted(symbols), label.settings.get_dict(), pseudo_family or potential_family)
        builder = cls.get_builder()
        for key in ('engine', 'code', 'settings', 'pseudo_family', 'potential_family'):
            if key in label:
                builder.label[key] = label[key]
        if compositions:
            builder.random = orm.Dict({
                'compositions': compositions, 'seeds': seeds, 'settings': structure_settings,
                'strains': strains,
            })  # fmt: skip
        if structures:
            builder.structures = structures
        return builder

    def generate_structures(self):
        self.ctx.structures = dict(self.inputs.get('structures', {}))
        if 'random' not in self.inputs:
            return None
        calcfunctions, _ = _structure_tools()
        if calcfunctions is None:
            self.report('aiida_glassml.structures is not installed: cannot generate random structures')
            return self.exit_codes.ERROR_STRUCTURE_GENERATION
        random = self.inputs.random.get_dict()
        for name, composition in sorted(random['compositions'].items()):
            for seed in random.get('seeds') or [1]:
                structure = calcfunctions.random_structure(
                    orm.Dict(composition), orm.Int(seed), orm.Dict(random.get('settings') or {})
                )
                key = f'{name}_seed{seed}'
                self.ctx.structures[key] = structure
                factors = strain_factors(random.get('strains'))
                if factors:
                    copies = calcfunctions.strained_copies(structure, orm.Dict({'strains': factors}))
                    for strain_key, copy in copies.items():
                        self.ctx.structures[f'{key}_{strain_key}'] = copy
        self.report(f'{len(self.ctx.structures)} structures to label: {", ".join(sorted(self.ctx.structures))}')
        return None

    def run_labelling(self):
        inputs = self.exposed_inputs(LabelWorkChain, namespace='label')
        inputs.update({'structures': self.ctx.structures, 'mode': orm.Str('aimd')})
        inputs['metadata'] = {'call_link_label': 'label'}
        node = self.submit(LabelWorkChain, **inputs)
        self.report(f'submitted LabelWorkChain<{node.pk}> (AIMD) for {len(self.ctx.structures)} structures')
        return ToContext(label=node)

    def results(self):
        node = self.ctx.label
        self.out('structures', {key: value for key, value in self.ctx.structures.items()})
        if 'report' in node.outputs:
            self.out('report', node.outputs.report)
        if 'training_set' not in node.outputs:
            return self.exit_codes.ERROR_LABELLING_FAILED
        self.out('training_set', node.outputs.training_set)
        self.report(f'initial data set: {node.outputs.training_set.n_frames} frames')
        return None

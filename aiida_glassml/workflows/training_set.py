"""``MergeTrainingSetsWorkChain``: merge labelled data sets (e.g. after each active-learning round) as a work chain,
so that merging can be submitted to the daemon alongside the labelling it follows."""

from aiida.engine import WorkChain
from aiida.orm import Bool, Dict

from aiida_glassml.calcfunctions.training_set import merge_training_sets, validate_merge_inputs
from aiida_glassml.data.training_set import TrainingSetData


def validate_inputs(inputs, _ctx=None) -> str | None:
    """The sets' levels of theory agree, or ``allow_mixed_levels`` is true: checked before anything is stored."""
    return validate_merge_inputs({**dict(inputs.get('training_sets') or {}),
                                  'allow_mixed_levels': inputs.get('allow_mixed_levels', False)})  # fmt: skip


class MergeTrainingSetsWorkChain(WorkChain):
    """Merge any number of ``TrainingSetData`` into one, dropping exact-duplicate structures. Sets labelled at
    different levels of theory are refused (before anything is stored) unless ``allow_mixed_levels`` is true."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace('training_sets', valid_type=TrainingSetData, dynamic=True,
                             help='The sets to merge, merged in key order.')  # fmt: skip
        spec.input('allow_mixed_levels', valid_type=Bool, default=lambda: Bool(False),
                   help='Merge sets labelled at different levels of theory (the result records every level).')
        spec.inputs.validator = validate_inputs
        spec.outline(cls.merge)
        spec.output('training_set', valid_type=TrainingSetData)
        spec.output('report', valid_type=Dict)
        spec.exit_code(300, 'ERROR_NO_INPUT', message='no training sets were given.')

    def merge(self):
        if not self.inputs.training_sets:
            return self.exit_codes.ERROR_NO_INPUT
        extra = {'allow_mixed_levels': self.inputs.allow_mixed_levels} if self.inputs.allow_mixed_levels.value else {}
        results = merge_training_sets(**self.inputs.training_sets, **extra)
        self.report(f'merged {len(self.inputs.training_sets)} sets: {results["report"].get_dict()}')
        self.out('training_set', results['training_set'])
        self.out('report', results['report'])

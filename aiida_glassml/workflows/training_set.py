"""``MergeTrainingSetsWorkChain``: merge labelled data sets (e.g. after each active-learning round) as a work chain,
so that merging can be submitted to the daemon alongside the labelling it follows."""

from aiida.engine import WorkChain
from aiida.orm import Dict

from aiida_glassml.calcfunctions.training_set import merge_training_sets
from aiida_glassml.data.training_set import TrainingSetData


class MergeTrainingSetsWorkChain(WorkChain):
    """Merge any number of ``TrainingSetData`` into one, dropping exact-duplicate structures."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace('training_sets', valid_type=TrainingSetData, dynamic=True,
                             help='The sets to merge, merged in key order.')  # fmt: skip
        spec.outline(cls.merge)
        spec.output('training_set', valid_type=TrainingSetData)
        spec.output('report', valid_type=Dict)
        spec.exit_code(300, 'ERROR_NO_INPUT', message='no training sets were given.')

    def merge(self):
        if not self.inputs.training_sets:
            return self.exit_codes.ERROR_NO_INPUT
        results = merge_training_sets(**self.inputs.training_sets)
        self.report(f'merged {len(self.inputs.training_sets)} sets: {results["report"].get_dict()}')
        self.out('training_set', results['training_set'])
        self.out('report', results['report'])

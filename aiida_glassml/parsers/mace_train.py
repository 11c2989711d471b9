"""Parser of :class:`~aiida_glassml.calculations.mace_train.MaceTrainCalculation`: the trained model as an
:class:`~aiida_glassml.data.mlip_potential.MlipPotentialData` (loadable by the job's ``python_code``) and the metrics
of its predictions on the train and test frames (:mod:`aiida_glassml.fitting.metrics`, as for an ACE fit)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_glassml.calculations.mace_train import plan_mace_fit
from aiida_glassml.common.mlip import MlipError
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.fitting import mace


class MaceTrainParser(Parser):
    def parse(self, **kwargs):
        temporary = kwargs.get('retrieved_temporary_folder')
        if temporary is None:
            return self.exit_codes.ERROR_NO_RETRIEVED_TEMPORARY_FOLDER
        temporary = pathlib.Path(temporary)
        names = set(self.retrieved.base.repository.list_object_names())

        def read(name: str) -> str:
            return self.retrieved.base.repository.get_object_content(name, mode='r') if name in names else ''

        model_path = temporary / mace.FILES['model']
        if not model_path.is_file():
            if self.node.exit_status == self.node.process_class.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME.status:
                return self.exit_codes.ERROR_OUT_OF_WALLTIME  # restartable: the checkpoints stay on the remote
            log = read(mace.FILES['train_stderr']) + read(mace.FILES['train_stdout'])
            return self.exit_codes.ERROR_TRAINING_FAILED.format(message=mace.training_tail(log))
        predictions = temporary / mace.FILES['predictions']
        if not predictions.is_file() or mace.FILES['evaluation'] not in names:
            return self.exit_codes.ERROR_EVALUATION_FAILED.format(
                message=mace.training_tail(read(mace.FILES['evaluate_stdout'])))
        info = json.loads(read(mace.FILES['evaluation']))

        links = self.node.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
        inputs = {link.link_label: link.node for link in links}
        settings = inputs['settings'].get_dict() if 'settings' in inputs else None
        plan = plan_mace_fit(inputs['train'], inputs.get('test'), settings, inputs.get('foundation_model'))
        metrics = {}
        with np.load(predictions) as arrays:
            for part, frames in (('train', plan.train), ('test', plan.test)):
                if frames is None or f'{part}_energy' not in arrays:
                    continue
                values = mace.metrics_from_predictions(frames, arrays[f'{part}_energy'], arrays[f'{part}_forces'])
                metrics.update({f'{part}_{k}': v for k, v in values.items()})
        metrics.update({
            'n_parameters': info['n_parameters'],
            'n_iterations': info['n_epochs'],
            'units': {'energy': 'meV/atom', 'force': 'meV/Å'},
        })  # fmt: skip
        foundation = inputs.get('foundation_model')
        provenance = {
            'model': f'MACE fine-tuned from MlipPotentialData<{foundation.uuid}>' if foundation
            else 'MACE trained from scratch',
            'training_set': inputs['train'].uuid,
            'test_set': inputs['test'].uuid if 'test' in inputs else None,
            'calculation': self.node.uuid,
            'mace_torch': info['package_version'],
            'torch': info['torch_version'],
            'r_max': info['r_max'],
            'level_of_theory': inputs['train'].level_of_theory,
        }
        try:
            potential = MlipPotentialData(
                calculator=mace.CALCULATOR, model_file=model_path, model_keyword=mace.MODEL_KEYWORD,
                kwargs=mace.calculator_kwargs(plan.settings), python_code=inputs['python_code'].full_label,
                provenance=provenance, _loaded={'elements': info['elements'], 'package': 'mace-torch',
                                                'package_version': info['package_version'], 'device_keyword': 'device'},
            )  # fmt: skip
        except MlipError as exc:
            return self.exit_codes.ERROR_INVALID_POTENTIAL.format(message=str(exc))
        potential.base.attributes.set('metrics', metrics)
        self.out('potential', potential)
        self.out('metrics', orm.Dict(metrics))
        return ExitCode(0)

"""``EvaluatePotentialCalculation`` (entry point ``glassml.evaluate_potential``): energy and force errors of an ACE
potential or an MLIP on a training set, as a job on the venv python (code ``glassml-python``), so a daemon crash
cannot leave it half-done and a work chain waits for it without blocking its worker.

The potential file (ACE ``potential.yaml``, or an MLIP's model file) and the dataset's frames are copied into the job
folder straight from the repository; :mod:`aiida_glassml.fitting.evaluate_job` does the science. Outputs: ``metrics``
(Dict: energy MAE/RMSE/max in meV/atom, raw and after a fitted per-element offset, force MAE/RMSE in meV/Å, reference
energies used), ``frame_errors`` (ArrayData per frame) and, with ``parity``, the PNGs ``energy_parity`` and
``force_parity`` (with ``training_set``, its frames appear beside ``dataset``'s as train and test).
"""

from __future__ import annotations

import io
import json
import typing as t

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting.evaluate_job import FILE_PREFIXES, FILES, FRAME_FILES, RUN_SCRIPT

__all__ = ('DEFAULT_CODE_LABEL', 'EvaluatePotentialCalculation', 'check_evaluation_inputs', 'default_python_code',
           'evaluation_builder')  # fmt: skip

#: the venv python the job runs on unless the potential names its own (``MlipPotentialData.python_code``)
DEFAULT_CODE_LABEL = 'glassml-python'


def check_evaluation_inputs(potential, dataset, reference_energies=None, training_set=None) -> None:
    """Raises AcePotentialError (MlipError for an MLIP) naming the fix when ``potential`` cannot be evaluated on
    ``dataset`` (and ``training_set``)."""
    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.fitting.evaluate import check_reference_energies

    if not isinstance(potential, (AcePotentialData, MlipPotentialData)):
        raise AcePotentialError(f'potential must be an AcePotentialData or MlipPotentialData, got '
                                f'{type(potential).__name__}.')  # fmt: skip
    elements = set()
    for name, frames in (('dataset', dataset), ('training_set', training_set)):
        if frames is None and name == 'training_set':
            continue
        if not isinstance(frames, TrainingSetData):
            raise AcePotentialError(f'{name} must be a TrainingSetData, got {type(frames).__name__}.')
        elements |= set(frames.base.attributes.get('elements', None) or frames.get_frameset().elements)
    potential.check_covers(sorted(elements))
    if reference_energies is not None:
        values = reference_energies.get_dict() if isinstance(reference_energies, orm.Dict) else reference_energies
        check_reference_energies(values, sorted(elements))


def default_python_code(computer: str | None = None) -> orm.AbstractCode:
    """The code labelled ``glassml-python``: on ``computer`` when given and registered there, else the only one, else
    the one on ``localhost``. Raises AcePotentialError naming the fix when there is none."""
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    from aiida_glassml.common.ace import AcePotentialError

    candidates = ([f'{DEFAULT_CODE_LABEL}@{computer}'] if computer else []) + [DEFAULT_CODE_LABEL,
                                                                                f'{DEFAULT_CODE_LABEL}@localhost']
    for label in candidates:
        try:
            return orm.load_code(label)
        except (NotExistent, MultipleObjectsError):
            continue
    raise AcePotentialError(f'no unique code `{DEFAULT_CODE_LABEL}` to evaluate the potential with; register it with '
                            '`aiida-glassml setup` or pass `code=`.')  # fmt: skip


def evaluation_code(potential, code: orm.AbstractCode | None = None, computer: str | None = None) -> orm.AbstractCode:
    """The python code of the job: the potential's own (``python_code``, a code label: the environment that can
    load that MLIP) first, else ``code``, else :func:`default_python_code`."""
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    from aiida_glassml.common.ace import AcePotentialError

    label = getattr(potential, 'python_code', None)
    if label:
        try:
            return orm.load_code(label)
        except (NotExistent, MultipleObjectsError) as exc:
            raise AcePotentialError(f'the potential names the python code `{label}`, which is not one registered code '
                                    f'({type(exc).__name__}); register it or change the potential.') from None
    return code if code is not None else default_python_code(computer)


def evaluation_builder(potential, dataset, reference_energies=None, parity=False, code=None, *, training_set=None,
                       computer: str | None = None):  # fmt: skip
    """A builder of :class:`EvaluatePotentialCalculation`, after :func:`check_evaluation_inputs` (raises before
    anything is stored). ``reference_energies``: a mapping or Dict; ``computer``: where to look for
    ``glassml-python`` when no ``code`` is given."""
    check_evaluation_inputs(potential, dataset, reference_energies, training_set)
    builder = EvaluatePotentialCalculation.get_builder()
    builder.code = evaluation_code(potential, code, computer)
    builder.potential = potential
    builder.dataset = dataset
    if reference_energies is not None:
        builder.reference_energies = (reference_energies if isinstance(reference_energies, orm.Dict)
                                      else orm.Dict(dict(reference_energies)))  # fmt: skip
    builder.parity = orm.Bool(bool(parity.value if isinstance(parity, orm.Bool) else parity))
    if training_set is not None:
        builder.training_set = training_set
    return builder


def validate_inputs(inputs, _ctx=None) -> str | None:
    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.common.mlip import MlipError

    if 'potential' not in inputs or 'dataset' not in inputs:
        return None  # the required ports report it
    parity = inputs.get('parity')
    if 'training_set' in inputs and not (parity is not None and parity.value):
        return '`training_set` only appears in the parity plots: set `parity` to True, or leave it out.'
    try:
        check_evaluation_inputs(inputs['potential'], inputs['dataset'], inputs.get('reference_energies'),
                                inputs.get('training_set'))  # fmt: skip
    except (AcePotentialError, MlipError) as exc:
        return str(exc)
    return None


class EvaluatePotentialCalculation(CalcJob):
    """Errors of a potential on a training set (see the module docstring)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('potential', valid_type=(AcePotentialData, MlipPotentialData),
                   help='The potential: ACE (pyace on its .yaml) or an MLIP (its ASE calculator and model file).')
        spec.input('dataset', valid_type=TrainingSetData, help='Labelled frames to evaluate on.')
        spec.input('reference_energies', valid_type=orm.Dict, required=False,
                   help='Per-element reference energies (eV); default: those in an ACE potential\'s metadata, none '
                        'for an MLIP.')  # fmt: skip
        spec.input('parity', valid_type=orm.Bool, default=lambda: orm.Bool(False),
                   help='Also make the energy and force parity plots (PNG).')
        spec.input('training_set', valid_type=TrainingSetData, required=False,
                   help='With `parity`: the frames the potential was fitted on, plotted as train beside `dataset` '
                        '(test).')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.evaluate_potential'
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['environment_variables'].default = {'OMP_NUM_THREADS': '1'}

        spec.output('metrics', valid_type=orm.Dict,
                    help='n_frames, n_atoms, energy_mae/rmse/max_error and energy_mae/rmse_offset (meV/atom) with '
                         'energy_offsets (eV/atom), force_mae/rmse (meV/Å), reference energies and their source.')
        spec.output('frame_errors', valid_type=orm.ArrayData,
                    help='Per frame: n_atoms, energy_reference/predicted (eV), energy_error_per_atom (meV/atom), '
                         'force_mae/rmse (meV/Å).')  # fmt: skip
        spec.output('energy_parity', valid_type=orm.SinglefileData, required=False, help='Energy parity plot (PNG).')
        spec.output('force_parity', valid_type=orm.SinglefileData, required=False,
                    help='Force-component parity plot (PNG).')
        spec.exit_code(300, 'ERROR_OUTPUT_MISSING',
                       message='the evaluation wrote no {filename}: the job died before it finished (see '
                               'evaluation.out).')  # fmt: skip
        spec.exit_code(310, 'ERROR_EVALUATION', message='the evaluation failed: {error}')

    def prepare_for_submission(self, folder):
        potential = self.inputs.potential
        copies = []
        if isinstance(potential, AcePotentialData):
            calculator = {'type': 'ace', 'yaml': AcePotentialData.YAML}
            copies.append((potential.uuid, AcePotentialData.YAML, AcePotentialData.YAML))
        else:
            calculator = {**potential.calculator_spec(), 'elements': potential.elements}
            if potential.has_model_file:
                copies.append((potential.uuid, potential.model_filename, potential.model_filename))
        spec: dict[str, t.Any] = {'calculator': calculator, 'parity': bool(self.inputs.parity.value),
                                  'training_set': 'training_set' in self.inputs}  # fmt: skip
        if 'reference_energies' in self.inputs:
            spec['reference_energies'] = self.inputs.reference_energies.get_dict()
        for prefix in FILE_PREFIXES:
            if prefix in self.inputs:
                node = self.inputs[prefix]
                copies.extend((node.uuid, getattr(TrainingSetData, kind.upper()), pattern.format(prefix=prefix))
                              for kind, pattern in FRAME_FILES.items())  # fmt: skip
        folder.create_file_from_filelike(io.StringIO(json.dumps(spec, indent=1)), FILES['input'], 'w')
        folder.create_file_from_filelike(io.StringIO(RUN_SCRIPT), FILES['script'], 'w')

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [FILES['script']]
        codeinfo.stdout_name = FILES['stdout']
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = copies
        calcinfo.retrieve_list = [FILES[name] for name in ('metrics', 'frame_errors', 'energy_parity', 'force_parity',
                                                           'stdout')]  # fmt: skip
        return calcinfo

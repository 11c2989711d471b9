"""``ActiveSetCalculation``: a MaxVol active set (``.asi``) for an existing ACE potential, built by pacemaker's
``pace_activeset`` on a labelled dataset, so that MD can track the extrapolation grade gamma.

The command line is built in :mod:`aiida_glassml.fitting.active_set`; the inputs are checked (elements covered,
enough atomic environments per element, settings) before anything is stored by :func:`check_active_set_inputs`.
"""

from __future__ import annotations

import io

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.data.ace_potential import AcePotentialData, AcePotentialError
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting import active_set
from aiida_glassml.fitting.settings import FitSettingsError
from aiida_glassml.fitting.split import atom_counts

DATA_FILENAME = 'data.pckl.gzip'
POTENTIAL_FILENAME = 'potential.yaml'
ASI_FILENAME = 'potential.asi'  # pace_activeset writes <potential stem>.asi
STDOUT, STDERR = 'activeset.out', 'activeset.err'


def check_active_set_inputs(potential: AcePotentialData, dataset: TrainingSetData, settings: dict | None = None) -> dict:
    """Validated settings; raises AcePotentialError (elements not covered) or FitSettingsError (too few environments,
    bad settings) naming the fix."""
    settings = active_set.validate_active_set_settings(settings)
    elements = dataset.base.attributes.get('elements', None) or dataset.get_frameset().elements
    potential.check_covers(elements)
    functions = potential.base.attributes.get('functions_per_element') or {}
    active_set.check_active_set_data(settings, atom_counts(dataset.get_frameset()), functions)
    return settings


def validate_inputs(value, ctx=None) -> str | None:
    if 'potential' not in value or 'dataset' not in value:
        return None
    try:
        check_active_set_inputs(value['potential'], value['dataset'],
                                value['settings'].get_dict() if 'settings' in value else None)  # fmt: skip
    except (AcePotentialError, FitSettingsError) as exc:
        return str(exc)
    return None


class ActiveSetCalculation(CalcJob):
    """Build the active set of ``potential`` on ``dataset`` with ``pace_activeset``; output the potential with it."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='The `pace_activeset` code.')
        spec.input('potential', valid_type=AcePotentialData, help='The potential (its .yaml and .yace are kept).')
        spec.input('dataset', valid_type=TrainingSetData, help='Frames whose atomic environments span the set.')
        spec.input('settings', valid_type=orm.Dict, required=False,
                   help='gamma_tolerance (1.01), all_atoms (false: pacemaker first drops atoms with large force '
                        'errors), maxvol_iters (300).')  # fmt: skip
        spec.inputs.validator = validate_inputs
        options = spec.inputs['metadata']['options']
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False
        options['parser_name'].default = 'glassml.pace_activeset'
        options['output_filename'].default = STDOUT

        spec.output('potential', valid_type=AcePotentialData, help='The same potential with the active set (.asi).')
        spec.exit_code(300, 'ERROR_NO_RETRIEVED_TEMPORARY_FOLDER', message='The temporary retrieved folder is missing.')
        spec.exit_code(302, 'ERROR_INSUFFICIENT_ENVIRONMENTS',
                       message='pace_activeset: insufficient atomic environments for the number of functions; add '
                               'data or use all_atoms. {message}')  # fmt: skip
        spec.exit_code(304, 'ERROR_ACTIVE_SET_MISSING', message='pace_activeset wrote no .asi: {message}')
        spec.exit_code(305, 'ERROR_INVALID_ACTIVE_SET', message='the active set does not fit the potential: {message}')

    def prepare_for_submission(self, folder):
        settings = check_active_set_inputs(self.inputs.potential, self.inputs.dataset,
                                           self.inputs.settings.get_dict() if 'settings' in self.inputs else None)
        content = self.inputs.potential.base.repository.get_object_content(AcePotentialData.YAML, 'rb')
        folder.create_file_from_filelike(io.BytesIO(content), POTENTIAL_FILENAME, mode='wb')
        self.inputs.dataset.get_frameset().write_pacemaker_pickle(folder.get_abs_path(DATA_FILENAME))

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = active_set.activeset_cmdline(settings, DATA_FILENAME, POTENTIAL_FILENAME)
        codeinfo.stdout_name, codeinfo.stderr_name = STDOUT, STDERR

        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [STDOUT, STDERR]
        calcinfo.retrieve_temporary_list = [ASI_FILENAME]
        return calcinfo

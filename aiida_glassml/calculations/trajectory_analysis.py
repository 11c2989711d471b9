"""``TrajectoryAnalysisCalculation``: analyse the production part of an MD dump where it lies (a symlink into the MD
run's remote folder) and keep only the reduced results: MSD per species, D ± err, the mobile ion's self van Hove
function, per-ion displacements and the fast/slow sets (:func:`aiida_glassml.analysis.diffusion_series.main`).

Runs ``python run_analysis.py`` with the venv python (code label ``glassml-python``), like ``AseMDCalculation``. A
10 ns dump is never copied into the repository; the job only retrieves ``analysis.json`` and ``analysis.npz``.
"""

from __future__ import annotations

import io
import json

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.analysis import diffusion_series as series

__all__ = ('TrajectoryAnalysisCalculation', 'PRODUCTION_KEYS')

#: keys of the ``production`` input: where the production frames are in the dump and what run they belong to
PRODUCTION_KEYS = ('trajectory_file', 'format', 'first_step', 'every', 'timestep_ps', 'temperature', 'variant',
                   'replica', 'label')  # fmt: skip


def validate_production(value, _ctx=None) -> str | None:
    data = value.get_dict()
    unknown = sorted(set(data) - set(PRODUCTION_KEYS))
    missing = [k for k in ('trajectory_file', 'first_step', 'every', 'timestep_ps', 'temperature') if k not in data]
    if unknown or missing:
        return f'`production` has unknown keys {unknown} / lacks {missing}; known keys are {list(PRODUCTION_KEYS)}.'
    if not data['trajectory_file']:
        return '`production.trajectory_file` is empty: the MD run wrote no dump; give it a dump_interval > 0.'
    for name in ('every', 'timestep_ps', 'temperature'):
        if not isinstance(data[name], (int, float)) or not data[name] > 0:
            return f'`production.{name}` must be positive, got {data[name]!r}.'
    return None


def validate_parameters(value, _ctx=None) -> str | None:
    from aiida_glassml.analysis import AnalysisInputError

    try:
        series.fill_run_parameters(value.get_dict())
    except AnalysisInputError as exc:
        return str(exc)
    return None


def validate_inputs(inputs, _ctx=None) -> str | None:
    code, parent = inputs.get('code'), inputs.get('parent_folder')
    if code is not None and parent is not None and code.computer.pk != parent.computer.pk:
        return (f'the dump lies on computer {parent.computer.label!r} but the analysis code runs on '
                f'{code.computer.label!r}; register the python code (glassml-python) on the computer of the MD run.')
    return None


class TrajectoryAnalysisCalculation(CalcJob):
    """Reduce the production frames of an MD dump in ``parent_folder`` (see the module docstring)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('parent_folder', valid_type=orm.RemoteData,
                   help='`remote_folder` of the MD CalcJob that wrote the dump (symlinked, not copied).')
        spec.input('production', valid_type=orm.Dict, validator=validate_production,
                   help=f'Which frames are the production run and what run it is; keys {list(PRODUCTION_KEYS)}.')
        spec.input('parameters', valid_type=orm.Dict, default=lambda: orm.Dict(), validator=validate_parameters,
                   help=f'Analysis parameters (defaults in diffusion_series.RUN_DEFAULTS): {sorted(series.RUN_DEFAULTS)}.')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.trajectory_analysis'
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['environment_variables'].default = {'OMP_NUM_THREADS': '1'}

        spec.output('results', valid_type=orm.Dict,
                    help='D ± err per species (Å²/ps, cm²/s), σ_NE, mobility classes, ring proximity, volume, '
                         'peak memory of the analysis.')  # fmt: skip
        spec.output('msd', valid_type=orm.ArrayData, help='`times` (ps) and `msd_<species>` (Å²).')
        spec.output('van_hove', valid_type=orm.ArrayData,
                    help='Self van Hove of the mobile ion at `van_hove_time`: `r` (Å), `G_s` (Å⁻³), `P_s` (Å⁻¹).')
        spec.output('displacements', valid_type=orm.ArrayData,
                    help='Per-ion |Δr| over `mobility_time` (`ion_index`, `displacement` Å) and the `fast`/`slow` sets.')
        spec.output('mobility_rdf', valid_type=orm.ArrayData, required=False,
                    help='Fast/slow partial g(r) on the first production frame (`r`, `fast_fast`, `slow_O`, ...).')
        spec.default_output_node = 'results'
        spec.exit_code(300, 'ERROR_OUTPUT_MISSING', message='the analysis wrote no {filename}.')
        spec.exit_code(310, 'ERROR_ANALYSIS', message='the trajectory could not be analysed: {error}')

    def prepare_for_submission(self, folder):
        production = self.inputs.production.get_dict()
        name = production['trajectory_file']
        spec = {
            'trajectory': name, 'format': production.get('format'), 'first_step': int(production['first_step']),
            'every': int(production['every']), 'timestep_ps': float(production['timestep_ps']),
            'temperature': float(production['temperature']), 'variant': production.get('variant'),
            'replica': production.get('replica'), 'label': production.get('label'),
            'parameters': self.inputs.parameters.get_dict(),
        }  # fmt: skip
        folder.create_file_from_filelike(io.StringIO(json.dumps(spec, indent=1)), series.FILES['input'], 'w')
        script = ('from aiida_glassml.analysis.diffusion_series import main\n\n'
                  f'raise SystemExit(main([{series.FILES["input"]!r}]))\n')  # fmt: skip
        folder.create_file_from_filelike(io.StringIO(script), series.FILES['script'], 'w')

        parent = self.inputs.parent_folder
        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [series.FILES['script']]
        codeinfo.stdout_name = 'analysis.out'
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        # the dump stays where the MD wrote it; only the reduced arrays come back
        calcinfo.remote_symlink_list = [(parent.computer.uuid, f'{parent.get_remote_path()}/{name}', name)]
        calcinfo.retrieve_list = [series.FILES['results'], series.FILES['arrays'], codeinfo.stdout_name]
        return calcinfo

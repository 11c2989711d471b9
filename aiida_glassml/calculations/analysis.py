"""``AnalysisCalculation`` (entry point ``glassml.analysis``): one heavy analysis step of a glass as a job, so a
daemon crash cannot leave it half-done (a calcfunction runs inside the daemon worker and dies with it), and so it can
run beside a large trajectory on a cluster.

``task``: ``structure`` (g(r), S(Q), T(r)/G(r) of ``structure``), ``network`` (bond angles and rings of
``structure``) or ``dynamics`` (MSD, D, σ_NE, van Hove, α2 of ``trajectory``). It writes ``analysis_input.json``
and the structure (or copies the trajectory's ``.npy`` arrays from the repository), runs ``python run_analysis.py``
with the venv python (code ``glassml-python``) and retrieves ``analysis.json`` and ``analysis.npz``. The science is
:mod:`aiida_glassml.analysis.jobs`, the one the calcfunctions call; the parser makes the same output nodes.
"""

from __future__ import annotations

import io
import json

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.analysis import AnalysisInputError
from aiida_glassml.analysis.jobs import FILES, TASKS, TRAJECTORY_ARRAYS

__all__ = ('AnalysisCalculation',)

#: which node each task analyses
TASK_INPUT = {'structure': 'structure', 'network': 'structure', 'dynamics': 'trajectory'}
#: the outputs each task makes (as the calcfunctions of the same science)
TASK_OUTPUTS = {
    'structure': ('results', 'rdf', 'structure_factor', 'partial_structure_factors', 'real_space'),
    'network': ('bond_angles', 'rings', 'ring_centre_rdf'),
    'dynamics': ('results', 'msd', 'van_hove', 'alpha2', 'mobility_rdf'),
}


def _validate_task(value, _ctx=None) -> str | None:
    if value.value not in TASKS:
        return f'unknown analysis task {value.value!r}; choose one of {list(TASKS)}.'
    return None


def fill_parameters(task: str, node, parameters: dict | None) -> dict:
    """The task's parameters with defaults filled in; raises :class:`AnalysisInputError` on bad input. The dynamics
    parameters are only checked for unknown keys here (the job fills them on the trajectory it reads)."""
    if task == 'structure':
        from aiida_glassml.calcfunctions.analysis_structure import validate_structure_parameters

        return validate_structure_parameters(node, parameters)
    if task == 'network':
        from aiida_glassml.calcfunctions.analysis import validate_structure_extra_parameters

        return validate_structure_extra_parameters(node, parameters)
    from aiida_glassml.analysis.dynamics_summary import DYNAMICS_PARAMETERS

    unknown = sorted(set(parameters or {}) - set(DYNAMICS_PARAMETERS))
    if unknown:
        raise AnalysisInputError(f'unknown dynamics parameters {unknown}; allowed are {list(DYNAMICS_PARAMETERS)}.')
    return dict(parameters or {})


def validate_inputs(inputs, _ctx=None) -> str | None:
    task = inputs.get('task')
    if task is None or task.value not in TASKS:
        return None  # the port validator reports it
    wanted = TASK_INPUT[task.value]
    other = 'trajectory' if wanted == 'structure' else 'structure'
    if wanted not in inputs or other in inputs:
        return f'task {task.value!r} analyses a `{wanted}`: give it, and no `{other}`.'
    parameters = inputs['parameters'].get_dict() if 'parameters' in inputs else {}
    try:
        fill_parameters(task.value, inputs[wanted], parameters)
    except AnalysisInputError as exc:
        return str(exc)
    return None


class AnalysisCalculation(CalcJob):
    """One heavy analysis step (see the module docstring)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('task', valid_type=orm.Str, validator=_validate_task, help=f'What to analyse: one of {list(TASKS)}.')
        spec.input('structure', valid_type=orm.StructureData, required=False,
                   help='The glass (tasks `structure` and `network`).')
        spec.input('trajectory', valid_type=orm.TrajectoryData, required=False,
                   help='An MD trajectory, times in ps (task `dynamics`); its arrays are copied into the job folder.')
        spec.input('parameters', valid_type=orm.Dict, required=False,
                   help='Parameters of the task, as the work chain takes them (structure_parameters, '
                        'network_parameters or dynamics_parameters with the temperature).')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.analysis'
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['environment_variables'].default = {'OMP_NUM_THREADS': '1'}

        spec.output('results', valid_type=orm.Dict, required=False,
                    help='structure: coordination, bonds, cutoffs; dynamics: D ± err, σ_NE, Haven, hops, mobility.')
        for name, help_text in (('rdf', 'structure: partial g(r) and running coordination (r in Å).'),
                                ('bond_angles', 'network: bond-angle distributions (theta in degrees).'),
                                ('rings', 'network: Guttman ring sizes and centres.'),
                                ('ring_centre_rdf', 'network: g(r) of `ring_species` around ring centres.'),
                                ('van_hove', 'dynamics: self (and distinct) van Hove functions.'),
                                ('mobility_rdf', 'dynamics: fast/slow partial g(r).')):  # fmt: skip
            spec.output(name, valid_type=orm.ArrayData, required=False, help=help_text)
        for name, help_text in (('structure_factor', 'structure: neutron and X-ray S(Q) against Q in 1/Å.'),
                                ('partial_structure_factors', 'structure: Faber–Ziman S_ab(Q).'),
                                ('real_space', 'structure: g, T, G (neutron, X-ray) against r in Å.'),
                                ('msd', 'dynamics: MSD per species (Å²) against t (ps).'),
                                ('alpha2', 'dynamics: non-Gaussian parameter per species.')):  # fmt: skip
            spec.output(name, valid_type=orm.XyData, required=False, help=help_text)
        spec.exit_code(300, 'ERROR_OUTPUT_MISSING',
                       message='the analysis wrote no {filename}: the job died before it finished (see analysis.out).')
        spec.exit_code(310, 'ERROR_ANALYSIS', message='the {task} analysis failed: {error}')

    def prepare_for_submission(self, folder):
        from aiida_glassml.analysis.jobs import write_structure

        task = self.inputs.task.value
        given = self.inputs.parameters.get_dict() if 'parameters' in self.inputs else {}
        spec = {'task': task}
        calcinfo = CalcInfo()
        calcinfo.local_copy_list = []
        if task == 'dynamics':
            node = self.inputs.trajectory
            spec['parameters'] = fill_parameters(task, node, given)
            arrays = [name for name in TRAJECTORY_ARRAYS if name in node.get_arraynames()]
            spec['trajectory'] = {
                'arrays': arrays, 'symbols': list(node.symbols), 'pbc': node.base.attributes.get('pbc', None),
                'wrapped': bool(node.base.attributes.get('wrapped', True)), 'name': f'TrajectoryData<{node.pk}>',
            }  # fmt: skip
            # straight from the repository: the positions are never loaded into the daemon worker
            calcinfo.local_copy_list = [(node.uuid, f'{name}.npy', FILES['trajectory'].format(name=name))
                                        for name in arrays]  # fmt: skip
        else:
            spec['parameters'] = fill_parameters(task, self.inputs.structure, given)
            write_structure(folder.abspath, self.inputs.structure.get_ase())
        folder.create_file_from_filelike(io.StringIO(json.dumps(spec, indent=1)), FILES['input'], 'w')
        script = f'from aiida_glassml.analysis.jobs import main\n\nraise SystemExit(main([{FILES["input"]!r}]))\n'
        folder.create_file_from_filelike(io.StringIO(script), FILES['script'], 'w')

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [FILES['script']]
        codeinfo.stdout_name = FILES['stdout']
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [FILES['results'], FILES['arrays'], FILES['stdout']]
        return calcinfo

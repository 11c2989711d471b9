"""``AseMDCalculation``: run an :class:`~aiida_glassml.md.protocol.MDProtocol` in ASE with an ACE potential (pyace),
an MLIP (:class:`~aiida_glassml.data.mlip_potential.MlipPotentialData`) or any ASE calculator, in a script the CalcJob writes. The node layout is the shared one of
:mod:`aiida_glassml.calculations.md_outputs` (as LAMMPS)."""

from __future__ import annotations

import io

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.calculations import md_outputs as outputs
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.md import ase_runner
from aiida_glassml.md.protocol import MDProtocol

__all__ = ('AseMDCalculation',)


class AseMDCalculation(CalcJob):
    """Writes ``input.json`` (structure, protocol, calculator) and ``run_md.py`` (imports
    :mod:`aiida_glassml.md.ase_runner` and runs it on ``input.json``), then runs ``python run_md.py`` with the venv
    python (code label ``glassml-python``). ``results['versions']`` records aiida-glassml, ase and pyace as installed
    where it ran.

    Give either ``potential`` (an :class:`AcePotentialData`, whose gamma tracking needs its active set, or an
    :class:`MlipPotentialData`, whose model file is copied into the folder and loaded from there) or ``calculator``
    (``Dict(name=..., kwargs={...})``: an ASE calculator by import path ``module:Class``, ``ase.calculators`` entry
    point or ASE name).
    """

    _RETRIEVE = [
        ase_runner.FILES[k] for k in ('thermo', 'final', 'gamma', 'extrapolative', 'results', 'dump')
    ]

    @classmethod
    def define(cls, spec):
        super().define(spec)
        outputs.define_md_inputs(spec)
        spec.input('potential', valid_type=(AcePotentialData, MlipPotentialData), required=False,
                   help='ACE potential, run through pyace PyACECalculator (gamma from its .asi), or an MLIP run '
                        'through its own ASE calculator from local files.')  # fmt: skip
        spec.input('calculator', valid_type=orm.Dict, required=False, validator=_validate_calculator,
                   help='Any ASE calculator: {"name": "module:Class" | entry point | ASE name, "kwargs": {...}}.')  # fmt: skip
        spec.input('retrieve_trajectory', valid_type=orm.Bool, required=False,
                   help='False: leave the full dump in the remote folder (analysed there, e.g. by '
                        'TrajectoryAnalysisCalculation) and store no `trajectory`; default True.')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.ase_md'
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['environment_variables'].default = {'OMP_NUM_THREADS': '1'}
        outputs.define_md_outputs(spec)
        outputs.define_md_exit_codes(spec)

    def prepare_for_submission(self, folder):
        protocol = MDProtocol.from_dict(self.inputs.protocol.get_dict())
        if isinstance(self.inputs.get('potential'), MlipPotentialData):
            self.inputs.potential.write_files(folder.abspath)
            calculator = self.inputs.potential.calculator_spec()
        elif 'potential' in self.inputs:
            self.inputs.potential.write_files(folder.abspath)
            calculator = {
                'type': 'ace',
                'yaml': AcePotentialData.YAML,
                'asi': AcePotentialData.ASI if protocol.gamma is not None else None,
            }
        else:
            calculator = {'type': 'ase', **self.inputs.calculator.get_dict()}
        ase_runner.write_input(folder.abspath, self.inputs.structure.get_ase(), protocol, calculator)
        folder.create_file_from_filelike(io.StringIO(ase_runner.run_script()), ase_runner.FILES['script'], 'w')

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [ase_runner.FILES['script']]
        codeinfo.stdout_name = 'ase_md.out'
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        retrieve = list(self._RETRIEVE)
        if 'retrieve_trajectory' in self.inputs and not self.inputs.retrieve_trajectory.value:
            retrieve.remove(ase_runner.FILES['dump'])
        calcinfo.retrieve_list = [*retrieve, codeinfo.stdout_name]
        return calcinfo


def _validate_calculator(value, _ctx=None) -> str | None:
    if value is None:
        return None
    data = value.get_dict()
    unknown = sorted(set(data) - {'name', 'kwargs'})
    if unknown or 'name' not in data:
        return (f'`calculator` must be a Dict with `name` (and optional `kwargs`), got keys {sorted(data)}; e.g. '
                "Dict({'name': 'ase.calculators.emt:EMT', 'kwargs': {}}).")  # fmt: skip
    try:
        ase_runner.resolve_calculator_class(data['name'])
    except ase_runner.AseRunnerError as exc:
        return str(exc)
    return None


def validate_inputs(inputs, _ctx=None) -> str | None:
    """One engine source; the potential covers the structure; gamma tracking has an active set to read."""
    has_potential, has_calculator = 'potential' in inputs, 'calculator' in inputs
    if has_potential == has_calculator:
        return ('give exactly one of `potential` (an AcePotentialData or MlipPotentialData) or `calculator` (a Dict naming an ASE '
                f'calculator); got {"both" if has_potential else "neither"}.')  # fmt: skip
    protocol_node = inputs.get('protocol')
    if protocol_node is None or 'structure' not in inputs:
        return None  # the required ports report it
    structure = inputs['structure']
    symbols = {kind.symbol for kind in structure.kinds}
    try:
        protocol = MDProtocol.from_dict(protocol_node.get_dict())
    except Exception:  # noqa: BLE001 - the protocol port validator reports the details
        return None
    if has_potential:
        potential = inputs['potential']
        missing = sorted(symbols - set(potential.elements))
        if missing:
            covers = potential.elements if len(potential.elements) <= 12 else f'{len(potential.elements)} elements'
            return (f'the potential covers {covers} but the structure also contains {missing}; fit or '
                    'choose a potential that includes every element of the structure.')  # fmt: skip
        if protocol.gamma is not None and isinstance(potential, MlipPotentialData):
            return ('the protocol tracks gamma, which only an ACE potential with an active set reports; an MLIP has '
                    'no extrapolation grade. Set the protocol `gamma` to None.')  # fmt: skip
        if protocol.gamma is not None and not potential.has_active_set:
            return ('the protocol tracks gamma but the potential has no active set (.asi); build one with '
                    '`pace_activeset -d DATA potential.yaml` and store it with the potential, or set `gamma` to None.')  # fmt: skip
    elif protocol.gamma is not None:
        return ('the protocol tracks gamma, which needs an ACE `potential` with an active set; an ASE `calculator` '
                'reports no extrapolation grade. Set the protocol `gamma` to None.')  # fmt: skip
    return None

"""``AseMDCalculation``: run an :class:`~aiida_glassml.md.protocol.MDProtocol` in ASE with an ACE potential (pyace),
an MLIP (:class:`~aiida_glassml.data.mlip_potential.MlipPotentialData`) or any ASE calculator, in a script the CalcJob writes. The node layout is the shared one of
:mod:`aiida_glassml.calculations.md_outputs` (as LAMMPS)."""

from __future__ import annotations

import io
import pathlib

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.calculations import md_outputs as outputs
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.mlip_potential import MlipError, MlipPotentialData
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
    point or ASE name) or ``committee`` (two or more potentials of one kind and element set: the dynamics follow their
    mean; the protocol's ``force_deviation`` tracking records σ_F,max in the ``force_deviation`` output, keeps the
    frames above sigma_lo in ``extrapolative_trajectory`` and halts above sigma_hi with exit 351).
    """

    _RETRIEVE = [
        ase_runner.FILES[k] for k in ('thermo', 'final', 'gamma', 'force_deviation', 'extrapolative', 'results', 'dump')
    ]
    #: folder of the committee members' files, one subfolder per member label
    COMMITTEE_FOLDER = 'committee'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        outputs.define_md_inputs(spec)
        spec.input('potential', valid_type=(AcePotentialData, MlipPotentialData), required=False,
                   help='ACE potential, run through pyace PyACECalculator (gamma from its .asi), or an MLIP run '
                        'through its own ASE calculator from local files.')  # fmt: skip
        spec.input_namespace('committee', valid_type=(AcePotentialData, MlipPotentialData), dynamic=True,
                             required=False, populate_defaults=False,
                             help='A committee: two or more potentials of one kind and one element set (label -> '
                                  'potential). The dynamics follow their mean; with the protocol `force_deviation` the '
                                  'run records σ_F,max, saves frames above sigma_lo and halts above sigma_hi.')  # fmt: skip
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
        spec.output('force_deviation', valid_type=orm.ArrayData, required=False,
                    help='Committee uncertainty: arrays `step`, `max_force_deviation` (σ_F,max, eV/Å).')
        outputs.define_md_exit_codes(spec)
        spec.exit_code(351, 'ERROR_FORCE_DEVIATION_HALT',
                       message='stopped: committee force deviation {sigma} eV/Å exceeded sigma_hi {sigma_hi} eV/Å at '
                               'step {step}; the committee disagrees (outputs up to the halt are attached).')

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
        elif self.inputs.get('committee'):
            members = []
            for label in sorted(self.inputs.committee):
                member, where = self.inputs.committee[label], f'{self.COMMITTEE_FOLDER}/{label}'
                member.write_files(pathlib.Path(folder.abspath, where))
                members.append(_member_spec(member, where))
            calculator = {'type': 'committee', 'members': members}
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


def _member_spec(member, where: str) -> dict:
    """The runner's calculator spec of one committee member whose files are in the subfolder ``where``."""
    if isinstance(member, MlipPotentialData):
        spec = member.calculator_spec()
        if spec.get('model') and spec['model'].get('file'):
            spec['model'] = {**spec['model'], 'file': f'{where}/{spec["model"]["file"]}'}
        return spec
    return {'type': 'ace', 'yaml': f'{where}/{AcePotentialData.YAML}', 'asi': None}


def committee_kind(potential) -> str:
    """What kind of model a committee member is: ``ace`` or ``mlip:<calculator>``."""
    return 'ace' if isinstance(potential, AcePotentialData) else f'mlip:{potential.calculator}'


def check_committee_inputs(committee, symbols=None) -> str | None:
    """None, or one line naming what is wrong with a committee (size, kinds, element sets, coverage)."""
    from aiida_glassml.md.committee import CommitteeError, check_committee

    try:
        check_committee({label: (committee_kind(p), p.elements) for label, p in committee.items()})
    except CommitteeError as exc:
        return str(exc)
    elements = next(iter(committee.values())).elements
    missing = sorted(set(symbols or ()) - set(elements))
    if missing:
        return (f'the committee covers {elements} but the structure also contains {missing}; use members fitted on '
                'every element of the structure.')  # fmt: skip
    return None


def validate_inputs(inputs, _ctx=None) -> str | None:
    """One engine source; the potential covers the structure; gamma tracking has an active set to read; force-deviation
    tracking has a committee."""
    sources = [name for name in ('potential', 'calculator', 'committee') if inputs.get(name)]
    if len(sources) != 1:
        return ('give exactly one of `potential` (an AcePotentialData or MlipPotentialData), `committee` (two or more '
                'potentials of one kind) or `calculator` (a Dict naming an ASE calculator); got '
                f'{" and ".join(sources) if sources else "none"}.')  # fmt: skip
    has_potential = 'potential' in sources
    protocol_node = inputs.get('protocol')
    if protocol_node is None or 'structure' not in inputs:
        return check_committee_inputs(inputs['committee']) if 'committee' in sources else None
    structure = inputs['structure']
    symbols = {kind.symbol for kind in structure.kinds}
    try:
        protocol = MDProtocol.from_dict(protocol_node.get_dict())
    except Exception:  # noqa: BLE001 - the protocol port validator reports the details
        return None
    if 'committee' in sources:
        if protocol.gamma is not None:
            return ('the protocol tracks gamma, which one ACE potential with an active set reports, not a committee; '
                    'track the committee with the protocol `force_deviation` instead.')  # fmt: skip
        for member in inputs['committee'].values():
            if isinstance(member, MlipPotentialData):
                try:
                    member.check_code(inputs.get('code'))  # every member loads in the job's python
                except MlipError as exc:
                    return str(exc)
        return check_committee_inputs(inputs['committee'], symbols)
    if protocol.force_deviation is not None:
        return ('the protocol tracks the force deviation of a committee; give `committee` (two or more potentials) '
                'or set the protocol `force_deviation` to None.')  # fmt: skip
    if has_potential:
        potential = inputs['potential']
        missing = sorted(symbols - set(potential.elements))
        if missing:
            covers = potential.elements if len(potential.elements) <= 12 else f'{len(potential.elements)} elements'
            return (f'the potential covers {covers} but the structure also contains {missing}; fit or '
                    'choose a potential that includes every element of the structure.')  # fmt: skip
        if isinstance(potential, MlipPotentialData):
            try:
                potential.check_code(inputs.get('code'))  # an MLIP of another environment runs on its own python
            except MlipError as exc:
                return str(exc)
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

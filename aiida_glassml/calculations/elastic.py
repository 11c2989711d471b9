"""Strain–stress CalcJobs of the elastic constants (the loop is in :mod:`aiida_glassml.analysis.elastic`):

- ``ElasticAseCalculation`` (``glassml.elastic_ase``): ASE with an ACE potential (pyace) or any ASE calculator, in a
  script the CalcJob writes and runs with the venv python (code ``glassml-python``), as ``AseMDCalculation``;
- ``LammpsElasticCalculation`` (``glassml.elastic_lammps``): the same loop as a rendered LAMMPS input
  (``change_box ... remap`` + ``minimize``) run by ``lmp``, with a classical potential or ACE (``pair_style pace``).

Both give ``stress_strain`` (ArrayData: component, strain, stress in GPa, energy, fmax, iterations), ``structure``
(the minimised reference) and ``results``. Heavy steps are CalcJobs so they survive a daemon restart.
"""

from __future__ import annotations

import io
import pathlib
import tempfile

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.analysis import elastic
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.data.mlip_potential import MlipError, MlipPotentialData

__all__ = ('ElasticAseCalculation', 'LammpsElasticCalculation', 'validate_strain')

LAMMPS_SETTINGS_KEYS = ('drop_three_body',)


def validate_strain(value, _ctx=None) -> str | None:
    if value is None:
        return None
    try:
        elastic.StrainProtocol.from_dict(value.get_dict())
    except (elastic.ElasticInputError, TypeError) as exc:
        return f'invalid `strain`: {exc}'
    return None


def _define_common(spec) -> None:
    spec.input('structure', valid_type=orm.StructureData, help='Glass (or crystal) to strain; the cell is kept.')
    spec.input('strain', valid_type=orm.Dict, validator=validate_strain,
               help='StrainProtocol.to_dict(): strain_step, n_steps, components, ftol, maxiter, ...')
    spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    spec.inputs['metadata']['options']['withmpi'].default = False
    spec.output('stress_strain', valid_type=orm.ArrayData,
                help='Per state: component (index into COMPONENTS, -1 the reference), strain, stress (N x 6, GPa, '
                     'Voigt, tension positive), energy (eV), fmax (eV/Å), iterations.')  # fmt: skip
    spec.output('structure', valid_type=orm.StructureData, help='The minimised reference structure.')
    spec.output('results', valid_type=orm.Dict, help='Engine, atoms, states, unconverged minimisations, wall time.')
    spec.exit_code(300, 'ERROR_OUTPUT_MISSING', message='a required output file is missing: {filename}.')
    spec.exit_code(301, 'ERROR_OUTPUT_UNREADABLE', message='an output file could not be parsed: {filename}: {error}')
    spec.exit_code(305, 'ERROR_ENGINE', message='the engine stopped with an error: {error}')
    spec.exit_code(310, 'ERROR_INCOMPLETE', message='the strain loop stopped after {done} of {expected} states.')
    spec.exit_code(400, 'ERROR_OUT_OF_WALLTIME',
                   message='the scheduler stopped the run at its walltime before it finished: {error}')


def _elements(structure) -> set[str]:
    return {kind.symbol for kind in structure.kinds}


class ElasticAseCalculation(CalcJob):
    """The strain loop in ASE: writes ``input.json`` (structure, strain, calculator) and ``run_elastic.py`` (imports
    :mod:`aiida_glassml.analysis.elastic` and runs it), then runs ``python run_elastic.py``.

    Give ``potential`` (an :class:`AcePotentialData`, run through pyace, or an :class:`MlipPotentialData`, whose model
    file is copied into the folder, as for ``AseMDCalculation``) or ``calculator`` (``Dict(name=..., kwargs={...})``,
    an ASE calculator as for ``AseMDCalculation``).
    """

    _RETRIEVE = [elastic.FILES[k] for k in ('table', 'reference', 'results')]
    _STDOUT = 'elastic.out'

    @classmethod
    def define(cls, spec):
        from aiida_glassml.calculations.ase_md import _validate_calculator

        super().define(spec)
        _define_common(spec)
        spec.input('potential', valid_type=(AcePotentialData, MlipPotentialData), required=False,
                   help='ACE potential (run through pyace) or MLIP (its calculator, on its model file).')
        spec.input('calculator', valid_type=orm.Dict, required=False, validator=_validate_calculator,
                   help='Any ASE calculator: {"name": "module:Class" | entry point | ASE name, "kwargs": {...}}.')
        spec.inputs.validator = cls.validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.elastic_ase'
        spec.inputs['metadata']['options']['environment_variables'].default = {'OMP_NUM_THREADS': '1'}

    @staticmethod
    def validate_inputs(inputs, _ctx=None) -> str | None:
        """One engine source, and a potential that covers the structure (an MLIP on the code that loads it)."""
        has_potential, has_calculator = 'potential' in inputs, 'calculator' in inputs
        if has_potential == has_calculator:
            return ('give exactly one of `potential` (an AcePotentialData or MlipPotentialData) or `calculator` (a '
                    'Dict naming an ASE '
                    f'calculator); got {"both" if has_potential else "neither"}.')  # fmt: skip
        if has_potential and 'structure' in inputs:
            potential = inputs['potential']
            missing = sorted(_elements(inputs['structure']) - set(potential.elements))
            if missing:
                return (f'the potential covers {potential.elements} but the structure also contains {missing}; fit '
                        'or choose a potential that includes every element of the structure.')  # fmt: skip
        if has_potential and isinstance(inputs['potential'], MlipPotentialData):
            try:
                inputs['potential'].check_code(inputs.get('code'))  # an MLIP of another environment runs on its python
            except MlipError as exc:
                return str(exc)
        return None

    def prepare_for_submission(self, folder):
        protocol = elastic.StrainProtocol.from_dict(self.inputs.strain.get_dict())
        if isinstance(self.inputs.get('potential'), MlipPotentialData):
            self.inputs.potential.write_files(folder.abspath)
            calculator = self.inputs.potential.calculator_spec()
        elif 'potential' in self.inputs:
            self.inputs.potential.write_files(folder.abspath)
            calculator = {'type': 'ace', 'yaml': AcePotentialData.YAML, 'asi': None}
        else:
            calculator = {'type': 'ase', **self.inputs.calculator.get_dict()}
        elastic.write_input(folder.abspath, self.inputs.structure.get_ase(), protocol, calculator)
        folder.create_file_from_filelike(io.StringIO(elastic.run_script()), elastic.FILES['script'], 'w')

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [elastic.FILES['script']]
        codeinfo.stdout_name = self._STDOUT
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [*self._RETRIEVE, self._STDOUT]
        return calcinfo


class LammpsElasticCalculation(CalcJob):
    """The strain loop in LAMMPS (code ``lmp``; an ML-PACE build for ACE) with a :class:`ClassicalPotentialData` or
    an :class:`AcePotentialData` (``pair_style pace``). ``settings``: ``drop_three_body`` (bool) as for MD."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        _define_common(spec)
        spec.input('potential', valid_type=(ClassicalPotentialData, AcePotentialData),
                   help='ClassicalPotentialData, or AcePotentialData (pair_style pace).')
        spec.input('settings', valid_type=orm.Dict, required=False, help=f'Optional keys {LAMMPS_SETTINGS_KEYS}.')
        spec.inputs.validator = cls.validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.elastic_lammps'

    @classmethod
    def validate_inputs(cls, inputs, _ctx=None) -> str | None:
        from aiida_glassml.md import lammps as render
        from aiida_glassml.md.potentials import PotentialError

        try:
            cls.render(inputs, check_only=True)
        except (PotentialError, render.LammpsInputError, elastic.ElasticInputError, ValueError) as exc:
            return str(exc)
        return None

    @staticmethod
    def render(inputs, check_only: bool = False) -> dict:
        """``{'input', 'data', 'files'}`` from the inputs; raises on bad input (the validator's check)."""
        from aiida_glassml.md import lammps as render

        if 'structure' not in inputs or 'strain' not in inputs or 'potential' not in inputs:
            return {}
        settings = inputs['settings'].get_dict() if 'settings' in inputs else {}
        unknown = sorted(set(settings) - set(LAMMPS_SETTINGS_KEYS))
        if unknown:
            raise ValueError(f'unknown settings {unknown}; known: {list(LAMMPS_SETTINGS_KEYS)}.')
        protocol = elastic.StrainProtocol.from_dict(inputs['strain'].get_dict())
        structure, potential = inputs['structure'], inputs['potential']
        kinds = [(kind.name, kind.symbol) for kind in structure.kinds]
        if isinstance(potential, ClassicalPotentialData):
            block, _ = render.classical_block(potential.get_potential(), kinds, settings.get('drop_three_body', False))
        else:
            block = render.ace_block(potential.elements, kinds)
        _, (xhi, yhi, zhi, xy, xz, yz) = render.lammps_box(structure.cell)
        cell = [[xhi, 0.0, 0.0], [xy, yhi, 0.0], [xz, yz, zhi]]
        script = elastic.render_lammps_input(protocol, block, [symbol for _, symbol in kinds], cell)
        if check_only:
            return {}
        type_of = {name: index for index, (name, _) in enumerate(kinds, start=1)}
        data = render.write_data_file(
            structure.cell, [site.position for site in structure.sites],
            [type_of[site.kind_name] for site in structure.sites], [kind.mass for kind in structure.kinds],
            block.atom_style, [name for name, _ in kinds],
        )  # fmt: skip
        return {'input': script, 'data': data, 'files': block.files}

    def prepare_for_submission(self, folder):
        rendered = self.render(self.inputs)
        folder.create_file_from_filelike(io.StringIO(rendered['input']), elastic.FILES['lammps_input'], 'w')
        folder.create_file_from_filelike(io.StringIO(rendered['data']), elastic.FILES['lammps_data'], 'w')
        for name, content in rendered['files'].items():
            folder.create_file_from_filelike(io.StringIO(str(content)), name, 'w')
        provenance_exclude = []
        if isinstance(self.inputs.potential, AcePotentialData):
            with tempfile.TemporaryDirectory() as tmp:
                for path in self.inputs.potential.write_files(tmp).values():
                    path = pathlib.Path(path)
                    folder.create_file_from_filelike(io.BytesIO(path.read_bytes()), path.name, 'wb')
                    provenance_exclude.append(path.name)

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = ['-in', elastic.FILES['lammps_input'], '-log', elastic.FILES['lammps_log']]
        codeinfo.stdout_name = elastic.FILES['lammps_stdout']
        codeinfo.withmpi = self.inputs.metadata.options.withmpi
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.provenance_exclude_list = provenance_exclude
        calcinfo.retrieve_list = [elastic.FILES[k] for k in ('table', 'lammps_log', 'lammps_stdout',
                                                             'lammps_reference')]  # fmt: skip
        return calcinfo

"""``BaderCalculation`` (entry point ``glassml.bader``): Bader charges of a structure from the charge density a DFT
calculation wrote (CP2K's electron-density cube, VASP's CHGCAR), as a job on the venv python (code
``glassml-python``): a density of a large glass is a grid of millions of points.

``density``: the density file, a ``SinglefileData``, or a ``FolderData`` (a DFT calculation's ``retrieved``) or
``RemoteData`` (its ``remote_folder``, on the computer of this job) with ``density_filename``. ``structure``: the
structure the density belongs to (checked: same atoms, same cell). ``valences``: Z_val per element (CP2K: the q of
the GTH pseudopotential; VASP: the POTCAR's ZVAL). The science is :mod:`aiida_glassml.analysis.bader`.
"""

from __future__ import annotations

import io
import json
import pathlib

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_glassml.analysis import AnalysisInputError
from aiida_glassml.analysis.bader import (
    FILES,
    check_density_matches,
    check_valences,
    density_format,
    read_density_atoms_from_stream,
)

__all__ = ('BaderCalculation', 'check_bader_inputs')


def _filename(inputs) -> str | None:
    if 'density_filename' in inputs:
        return inputs['density_filename'].value
    density = inputs.get('density')
    return density.filename if isinstance(density, orm.SinglefileData) else None


def check_bader_inputs(density, structure: orm.StructureData, valences: dict, filename: str | None) -> None:
    """Raise :class:`AnalysisInputError` on inputs the Bader job cannot use: Z_val missing for an element, no density
    file, a file of an unknown format, or (for a file in the repository) a file whose atoms are not ``structure``'s.
    Runs before anything is stored."""
    symbols = [structure.get_kind(site.kind_name).symbol for site in structure.sites]
    check_valences(symbols, valences)
    if filename is None:
        raise AnalysisInputError(
            f'a {type(density).__name__} density needs `density_filename`: the name of the cube or CHGCAR in it.'
        )
    density_format(filename)
    if isinstance(density, orm.RemoteData):
        return  # read on the computer by the job, which checks the atoms there
    repository = density.base.repository
    if filename not in repository.list_object_names():
        raise AnalysisInputError(
            f'{type(density).__name__}<{density.pk or "unstored"}> holds no {filename} (it has '
            f'{sorted(repository.list_object_names())}); let the DFT run write the density (CP2K: E_DENSITY_CUBE, '
            'VASP: LCHARG) and retrieve it, or give the right `density_filename`.'
        )
    with repository.open(filename, mode='rb') as stream:
        atoms = read_density_atoms_from_stream(stream, filename)
    check_density_matches(atoms, symbols, [site.position for site in structure.sites], structure.cell)


def validate_inputs(inputs, _ctx=None) -> str | None:
    if 'density' not in inputs or 'structure' not in inputs or 'valences' not in inputs:
        return None  # the required ports report it
    try:
        check_bader_inputs(inputs['density'], inputs['structure'], inputs['valences'].get_dict(), _filename(inputs))
    except AnalysisInputError as exc:
        return str(exc)
    return None


class BaderCalculation(CalcJob):
    """Bader charges from a DFT charge density (see the module docstring)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('density', valid_type=(orm.SinglefileData, orm.FolderData, orm.RemoteData),
                   help='The density file, or the folder (retrieved or remote) holding `density_filename`.')
        spec.input('density_filename', valid_type=orm.Str, required=False,
                   help='Name of the cube (*.cube) or CHGCAR in `density` (a folder); gzipped files too.')
        spec.input('structure', valid_type=orm.StructureData, help='The structure the density is of.')
        spec.input('valences', valid_type=orm.Dict,
                   help='Z_val per element: CP2K the q of GTH-PBE-qN, VASP the POTCAR ZVAL.')
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.bader'
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['environment_variables'].default = {'OMP_NUM_THREADS': '1'}
        spec.output('charges', valid_type=orm.ArrayData,
                    help='Per atom, in the order of `structure`: charges (e, Z_val - population), populations (e), '
                         'volumes (Å³).')  # fmt: skip
        spec.output('summary', valid_type=orm.Dict,
                    help='Electron counts (density, valence, Bader), charge per element, attractors, grid.')
        spec.exit_code(300, 'ERROR_OUTPUT_MISSING',
                       message='the Bader job wrote no {filename}: it died before it finished (see bader.out).')
        spec.exit_code(310, 'ERROR_BADER', message='the Bader analysis failed: {error}')

    def prepare_for_submission(self, folder):
        structure = self.inputs.structure
        density = self.inputs.density
        filename = _filename(self.inputs)
        calcinfo = CalcInfo()
        calcinfo.local_copy_list, calcinfo.remote_copy_list = [], []
        if isinstance(density, orm.RemoteData):
            if density.computer.uuid != self.inputs.code.computer.uuid:
                raise AnalysisInputError(
                    f'the density is on {density.computer.label}, the Bader job would run on '
                    f'{self.inputs.code.computer.label}; give the retrieved FolderData instead.'
                )
            calcinfo.remote_copy_list.append(
                (density.computer.uuid, str(pathlib.PurePosixPath(density.get_remote_path()) / filename), filename)
            )
        else:
            calcinfo.local_copy_list.append((density.uuid, filename, filename))
        spec = {
            'density': filename, 'format': None,
            'symbols': [structure.get_kind(site.kind_name).symbol for site in structure.sites],
            'positions': [list(site.position) for site in structure.sites], 'cell': structure.cell,
            'valences': self.inputs.valences.get_dict(),
        }  # fmt: skip
        folder.create_file_from_filelike(io.StringIO(json.dumps(spec, indent=1)), FILES['input'], 'w')
        script = f'from aiida_glassml.analysis.bader import main\n\nraise SystemExit(main([{FILES["input"]!r}]))\n'
        folder.create_file_from_filelike(io.StringIO(script), FILES['script'], 'w')
        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [FILES['script']]
        codeinfo.stdout_name = FILES['stdout']
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [FILES['results'], FILES['arrays'], FILES['stdout']]
        return calcinfo

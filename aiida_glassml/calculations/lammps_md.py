"""``LammpsMDCalculation``: run an engine-neutral MD protocol in LAMMPS.

Built on aiida-lammps's ``LammpsRawCalculation`` (its ``files``/``filenames`` namespaces for extra files, its
``settings.additional_retrieve_list``); the ``script`` input is not used: the input is rendered here from
``protocol`` + ``structure`` + ``potential`` by :mod:`aiida_glassml.md.lammps`. Outputs and exit codes are the
shared MD layout of :mod:`aiida_glassml.calculations.md_outputs`.

``settings`` keys (all optional): ``kokkos`` (bool; run the Kokkos styles, e.g. ``pace/kk``), ``gpus`` (int, GPUs
requested) or ``threads`` (int, OpenMP threads of a Kokkos-OpenMP build), ``drop_three_body`` (bool; run a
classical potential without three-body terms LAMMPS cannot express),
``neigh_one``/``neigh_page`` (int; LAMMPS ``neigh_modify one/page``, raised by the restart after a neighbour-list
overflow), ``additional_retrieve_list`` (list), ``retrieve_trajectory`` (bool, default True; False leaves the full
dump in the remote folder, to be analysed there, and the parser stores no ``trajectory``).

Kokkos on GPUs: with ``kokkos`` the command line gets ``-k on g N -sf kk -pk kokkos newton on neigh half`` and the
scheduler gets the GPU request (``#SBATCH --gres=gpu:N`` / ``#PBS -l select=1:ngpus=N``) appended to
``custom_scheduler_commands``, unless those already request GPUs. N is ``settings.gpus`` or, failing that, the
number the ``custom_scheduler_commands`` option requests. Kokkos on CPU threads: ``kokkos`` with ``threads`` N
gives ``-k on t N -sf kk ...`` and no GPU request (ACE's ``pace/kk`` takes one thread). The rendered input is the
same either way. Kokkos with neither, or with both, is refused before anything is stored.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida_lammps.calculations.raw import LammpsRawCalculation

from aiida_glassml.calculations import md_outputs as outputs
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.md import lammps as render
from aiida_glassml.md.potentials import PotentialError
from aiida_glassml.md.protocol import MDProtocol, MDProtocolError

SETTINGS_KEYS = ('kokkos', 'gpus', 'threads', 'drop_three_body', 'neigh_one', 'neigh_page', 'additional_retrieve_list',
                 'retrieve_trajectory')


class LammpsMDCalculation(LammpsRawCalculation):
    """LAMMPS MD of a structure with a classical or ACE potential, following an :class:`MDProtocol`."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs['script'].required = False
        spec.inputs.pop('script')
        outputs.define_md_inputs(spec)
        spec.input('potential', valid_type=(ClassicalPotentialData, AcePotentialData),
                   help='ClassicalPotentialData, or AcePotentialData (pace; pace/extrapolation with gamma tracking).')
        spec.inputs['settings'].validator = None
        spec.inputs.validator = cls.validate_md_inputs
        spec.inputs['metadata']['options']['input_filename'].default = render.FILENAME_INPUT
        spec.inputs['metadata']['options']['output_filename'].default = render.FILENAME_STDOUT
        spec.inputs['metadata']['options']['parser_name'].default = 'glassml.lammps_md'
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        # aiida-lammps's `results` output and its exit codes are replaced by the shared MD layout
        spec.outputs.pop('results')
        outputs.define_md_outputs(spec)
        outputs.define_md_exit_codes(spec)

    # -- validation (before anything is stored) --------------------------------------------------------------------
    @classmethod
    def validate_md_inputs(cls, value, ctx=None) -> str | None:
        try:
            cls.render(value, check_only=True)
        except (MDProtocolError, PotentialError, render.LammpsInputError, ValueError) as exc:
            return str(exc)
        return None

    @staticmethod
    def _settings(inputs) -> dict:
        settings = inputs['settings'].get_dict() if 'settings' in inputs else {}
        unknown = sorted(set(settings) - set(SETTINGS_KEYS))
        if unknown:
            raise ValueError(f'unknown settings {unknown}; known: {list(SETTINGS_KEYS)}.')
        if not isinstance(settings.get('retrieve_trajectory', True), bool):
            raise ValueError(f'settings `retrieve_trajectory` must be true or false, got '
                             f'{settings["retrieve_trajectory"]!r}.')
        return settings

    @classmethod
    def render(cls, inputs, check_only: bool = False) -> dict:
        """Render everything from the inputs: ``{'input', 'data', 'files', 'cmdline'}``; raises on bad input."""
        if 'structure' not in inputs or 'protocol' not in inputs or 'potential' not in inputs:
            return {}
        settings = cls._settings(inputs)
        protocol = MDProtocol.from_dict(inputs['protocol'].get_dict())
        structure = inputs['structure']
        potential = inputs['potential']
        kinds = [(kind.name, kind.symbol) for kind in structure.kinds]
        if protocol.force_deviation is not None:  # else LAMMPS would run without the tracking asked for
            raise render.LammpsInputError('force_deviation tracking needs a committee, which runs in ASE '
                                          '(AseMDCalculation `committee`); LAMMPS tracks gamma only: use engine ase, '
                                          'or gamma tracking.')  # fmt: skip
        if isinstance(potential, ClassicalPotentialData):
            block, _ = render.classical_block(potential.get_potential(), kinds, settings.get('drop_three_body', False))
        else:
            extrapolation = protocol.gamma is not None
            if extrapolation and not potential.has_active_set:
                raise render.LammpsInputError('gamma tracking needs the active set (.asi) of the ACE potential; this '
                                              'AcePotentialData has none. Build one with pace_activeset, or drop gamma.')
            block = render.ace_block(potential.elements, kinds, extrapolation=extrapolation)
        kokkos = bool(settings.get('kokkos', False))
        threads = settings.get('threads', 0)
        gpus = render.resolve_gpus(kokkos, settings.get('gpus'), _option(inputs, 'custom_scheduler_commands'), threads)
        render.check_kokkos_threads(block, kokkos, threads)
        cmdline = render.command_line(kokkos, gpus, threads)
        scheduler_commands = cls.gpu_scheduler_commands(inputs)
        script = render.render_input(protocol, block, [symbol for _, symbol in kinds],
                                     neigh_one=settings.get('neigh_one'), neigh_page=settings.get('neigh_page'))
        if check_only:
            return {}
        type_of = {name: index for index, (name, _) in enumerate(kinds, start=1)}
        masses = [kind.mass for kind in structure.kinds]
        data = render.write_data_file(
            structure.cell, [site.position for site in structure.sites],
            [type_of[site.kind_name] for site in structure.sites], masses, block.atom_style, [n for n, _ in kinds],
        )  # fmt: skip
        return {'input': script, 'data': data, 'files': block.files, 'cmdline': cmdline,
                'scheduler_commands': scheduler_commands}

    @classmethod
    def gpu_scheduler_commands(cls, inputs) -> str:
        """Scheduler lines requesting the GPUs of a Kokkos run ('' without Kokkos, on OpenMP threads, with the direct
        scheduler, or when ``custom_scheduler_commands`` already request GPUs)."""
        settings = cls._settings(inputs)
        custom = _option(inputs, 'custom_scheduler_commands')
        if not settings.get('kokkos', False) or settings.get('threads') or render.gpus_in_scheduler_commands(custom):
            return ''
        gpus = render.resolve_gpus(True, settings.get('gpus'), custom)
        return render.scheduler_gpu_commands(gpus, _scheduler_type(inputs))

    def _setup_metadata(self, metadata: dict) -> None:
        """Add the GPU request of a Kokkos run to ``custom_scheduler_commands``: options are frozen once the node is
        stored, which is before ``prepare_for_submission`` runs, so it goes in here (the validator has already
        checked it can be made)."""
        super()._setup_metadata(metadata)
        extra = self.gpu_scheduler_commands(self.inputs)
        if extra:
            current = self.node.get_option('custom_scheduler_commands') or ''
            self.node.set_option('custom_scheduler_commands', '\n'.join(line for line in (current, extra) if line))

    # -- submission --------------------------------------------------------------------------------------------------
    def prepare_for_submission(self, folder) -> CalcInfo:
        rendered = self.render(self.inputs)
        settings = self._settings(self.inputs)
        if rendered['scheduler_commands'] and rendered['scheduler_commands'] not in (
                self.node.get_option('custom_scheduler_commands') or ''):
            raise render.LammpsInputError(f'the GPU request {rendered["scheduler_commands"]!r} of this Kokkos run is '
                                          'missing from the scheduler commands.')
        folder.create_file_from_filelike(_text(rendered['input']), render.FILENAME_INPUT, 'w')
        folder.create_file_from_filelike(_text(rendered['data']), render.FILENAME_DATA, 'w')
        for name, content in rendered['files'].items():
            folder.create_file_from_filelike(_text(content), name, 'w')
        provenance_exclude = []
        if isinstance(self.inputs.potential, AcePotentialData):
            with tempfile.TemporaryDirectory() as tmp:
                for path in self.inputs.potential.write_files(tmp).values():
                    if path is None:
                        continue
                    path = pathlib.Path(path)
                    with path.open('rb') as source, folder.open(path.name, 'wb') as target:
                        shutil.copyfileobj(source, target)
                    provenance_exclude.append(path.name)
        filenames = self.inputs['filenames'].get_dict() if 'filenames' in self.inputs else {}
        for key, node in self.inputs.get('files', {}).items():
            name = filenames.get(key, node.filename)
            with node.open(mode='rb') as source, folder.open(name, 'wb') as target:
                shutil.copyfileobj(source, target)
            provenance_exclude.append(name)

        codeinfo = CodeInfo()
        codeinfo.cmdline_params = rendered['cmdline']
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.stdout_name = render.FILENAME_STDOUT
        codeinfo.withmpi = self.inputs.metadata.options.withmpi

        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.provenance_exclude_list = provenance_exclude
        calcinfo.retrieve_list = [
            render.FILENAME_STDOUT, render.FILENAME_LOG, render.FILENAME_THERMO, render.FILENAME_FINAL,
            *([render.FILENAME_TRAJECTORY] if settings.get('retrieve_trajectory', True) else []),
            render.FILENAME_GAMMA, render.FILENAME_EXTRAPOLATIVE,
        ] + list(settings.get('additional_retrieve_list', []))  # fmt: skip
        return calcinfo


def _option(inputs, name: str):
    return (inputs.get('metadata', {}).get('options', {}) or {}).get(name)


def _scheduler_type(inputs) -> str:
    computer = inputs.get('metadata', {}).get('computer') or (inputs['code'].computer if 'code' in inputs else None)
    return computer.scheduler_type if computer is not None else 'core.direct'


def _text(content):
    import io

    return io.StringIO(content if isinstance(content, str) else content.decode())


__all__ = ('LammpsMDCalculation', 'orm')

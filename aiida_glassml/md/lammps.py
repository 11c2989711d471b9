"""Render an :class:`~aiida_glassml.md.protocol.MDProtocol` to a LAMMPS input (``units metal``), write the data file,
and build the command line. Pure Python (numpy, ASE's Prism for the triclinic box); no AiiDA imports.

File names inside the working directory are fixed (see the ``FILENAME_*`` constants) so the parser can find them:
``thermo.dat`` (our own thermo columns via ``fix print``), ``trajectory.dump`` (full dump), ``final.dump``
(final structure), ``gamma.dat`` and ``extrapolative.dump`` (with ACE gamma tracking).

Gamma tracking uses the mainline ML-PACE syntax::

    pair_style pace/extrapolation                      # B-basis .yaml + active set .asi (a .yace will not load)
    fix pace_gamma all pair N pace/extrapolation gamma 1
    compute max_pace_gamma all reduce max f_pace_gamma
    dump_modify extrapolative skip v_dump_skip        # frames below gamma_lo are not written
    fix gamma_halt all halt N v_max_pace_gamma >= gamma_hi error soft

``error soft`` ends the current run; a ``jump`` after each run then skips the remaining stages when the run ended
early, so the final structure and all files up to the halt are still written. ``fix halt`` never checks the
starting structure, so a ``run 0`` before the first MD stage checks it (the ASE runner halts there too). As in the
ASE runner, the last step reached always appears in the thermo file and the trajectory.

Kokkos (``pace/kk``, ``pace/extrapolation/kk``) is a command-line choice (:func:`command_line`): the same input
runs with ``-k on g N`` on GPUs or ``-k on t N`` on OpenMP threads.
"""

from __future__ import annotations

import dataclasses
import typing as t

import numpy as np

from aiida_glassml.common import ace as ace_helpers
from aiida_glassml.md import protocol as md
from aiida_glassml.md.outputs import THERMO_COLUMNS
from aiida_glassml.md.potentials import ClassicalPotential

FILENAME_INPUT = 'input.in'
FILENAME_DATA = 'structure.data'
FILENAME_LOG = 'log.lammps'
FILENAME_STDOUT = 'lammps.out'
FILENAME_THERMO = 'thermo.dat'
FILENAME_TRAJECTORY = 'trajectory.dump'
FILENAME_FINAL = 'final.dump'
FILENAME_GAMMA = 'gamma.dat'
FILENAME_EXTRAPOLATIVE = 'extrapolative.dump'

#: printed after every stage and at the end, parsed to count completed stages and the stop reason
MARK_STAGE = 'GLASSML_STAGE_DONE'
MARK_END = 'GLASSML_END'
MARK_GAMMA_HALT = 'GLASSML_GAMMA_HALT'

#: LAMMPS thermo keyword of each column of :data:`~aiida_glassml.md.outputs.THERMO_COLUMNS`
THERMO_KEYWORDS = {'step': 'step', 'time': 'time', 'temperature': 'temp', 'pressure': 'press', 'volume': 'vol',
                   'potential_energy': 'pe', 'total_energy': 'etotal', 'density': 'density'}
#: wrapped positions plus image flags: unwrapped = x + ix * a + ... (the shared trajectory layout)
DUMP_COLUMNS = {'positions': 'x y z ix iy iz', 'velocities': 'vx vy vz', 'forces': 'fx fy fz'}
#: LAMMPS ``neigh_modify`` defaults of ``one`` (neighbours per atom) and ``page`` (≥ 10 × one)
NEIGH_ONE_DEFAULT = 2000
NEIGH_PAGE_DEFAULT = 100000
KOKKOS_ARGS = ['-k', 'on', 'g', '1', '-sf', 'kk', '-pk', 'kokkos', 'newton', 'on', 'neigh', 'half']
#: LAMMPS's ``pace/kk`` and ``pace/extrapolation/kk`` refuse more than one host thread ("can currently only run on a
#: single CPU thread", LAMMPS 4Feb2025)
ACE_KOKKOS_MAX_THREADS = 1
#: dump precision: LAMMPS's default ``%g`` keeps 6 digits (1e-4 Å in a 15 Å cell)
DUMP_FLOAT_FORMAT = '%.15g'


class LammpsInputError(ValueError):
    """The LAMMPS input cannot be rendered as asked; the message names the problem and the fix."""


@dataclasses.dataclass
class PotentialBlock:
    """What the potential contributes to an input: interaction lines, auxiliary files and how atoms are typed."""

    lines: list
    files: dict  # name -> str (text) or pathlib.Path (copied by the CalcJob)
    atom_style: str = 'atomic'
    charge_lines: list = dataclasses.field(default_factory=list)
    supports_gamma: bool = False
    description: str = ''
    kokkos_max_threads: int | None = None  # None: no limit


def classical_block(
    potential: ClassicalPotential, kinds: t.Sequence[tuple[str, str]], drop_three_body: bool = False
) -> tuple[PotentialBlock, list[str]]:
    """Block for a classical potential; ``kinds`` are ``(kind_name, symbol)`` in LAMMPS type order. Returns the
    block and the species of each type."""
    species = potential.check_covers(kinds)
    lines, files = potential.lammps_lines(species, drop_three_body=drop_three_body)
    block = PotentialBlock(
        lines=lines, files=files, atom_style='charge', charge_lines=potential.charge_lines(species),
        description=f'classical potential {potential.name} ({potential.form})',
    )  # fmt: skip
    return block, species


def ace_block(
    potential_elements: t.Sequence[str], kinds: t.Sequence[tuple[str, str]], extrapolation: bool = False
) -> PotentialBlock:
    """Block for ``pair_style pace`` (.yace) or ``pace/extrapolation`` (.yaml + .asi) with the elements of the
    structure's kinds. Files are named as ``AcePotentialData.write_files`` names them."""
    symbols = [symbol for _, symbol in kinds]
    missing = sorted(set(symbols) - set(potential_elements))
    if missing:
        raise LammpsInputError(f'the ACE potential has no parameters for {missing}; it covers '
                               f'{list(potential_elements)}. Use a potential trained on every element of the structure.')
    lines = ace_helpers.lammps_pair_lines(symbols, extrapolation=extrapolation)
    return PotentialBlock(lines=lines, files={}, atom_style='atomic', supports_gamma=extrapolation,
                          description='ACE ' + ('pace/extrapolation' if extrapolation else 'pace'),
                          kokkos_max_threads=ACE_KOKKOS_MAX_THREADS)


# -- data file -----------------------------------------------------------------------------------------------------
def lammps_box(cell: np.ndarray):
    """``(prism, bounds)`` for a cell (rows are vectors); bounds = (xhi, yhi, zhi, xy, xz, yz), lo = 0."""
    from ase.calculators.lammps import Prism

    prism = Prism(np.asarray(cell, dtype=float))
    return prism, prism.get_lammps_prism()


def write_data_file(
    cell: np.ndarray,
    positions: np.ndarray,
    type_ids: t.Sequence[int],
    masses: t.Sequence[float],
    atom_style: str = 'atomic',
    type_labels: t.Sequence[str] | None = None,
) -> str:
    """LAMMPS data file text (``units metal``). ``type_ids`` are 1-based, ``masses`` per type (amu). Charges are
    written as 0 for ``atom_style charge``; the input sets them per type."""
    if atom_style not in ('atomic', 'charge'):
        raise LammpsInputError(f'atom_style {atom_style!r} is not supported; use atomic or charge.')
    prism, (xhi, yhi, zhi, xy, xz, yz) = lammps_box(cell)
    pos = prism.vector_to_lammps(np.asarray(positions, dtype=float), wrap=True)
    n_types = len(masses)
    out = ['LAMMPS data file written by aiida-glassml (units metal)', '',
           f'{len(pos)} atoms', f'{n_types} atom types', '',
           f'0.0 {xhi:.10f} xlo xhi', f'0.0 {yhi:.10f} ylo yhi', f'0.0 {zhi:.10f} zlo zhi']
    if prism.is_skewed():
        out.append(f'{xy:.10f} {xz:.10f} {yz:.10f} xy xz yz')
    out += ['', 'Masses', '']
    for i, mass in enumerate(masses, start=1):
        label = f'  # {type_labels[i - 1]}' if type_labels else ''
        out.append(f'{i} {mass:.6f}{label}')
    out += ['', f'Atoms # {atom_style}', '']
    for index, (type_id, xyz) in enumerate(zip(type_ids, pos), start=1):
        charge = ' 0.0' if atom_style == 'charge' else ''
        out.append(f'{index} {int(type_id)}{charge} {xyz[0]:.10f} {xyz[1]:.10f} {xyz[2]:.10f}')
    return '\n'.join(out) + '\n'


# -- command line -------------------------------------------------------------------------------------------------
def command_line(kokkos: bool = False, gpus: int = 0, threads: int = 0) -> list[str]:
    """``lmp`` arguments. Kokkos runs either on ``gpus`` GPUs (``-k on g N``, a GPU build) or on ``threads`` OpenMP
    threads (``-k on t N``, a Kokkos-OpenMP build); the input is the same."""
    args = ['-in', FILENAME_INPUT, '-log', FILENAME_LOG]
    for name, value in (('gpus', gpus), ('threads', threads)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise LammpsInputError(f'settings `{name}` must be a non-negative integer, got {value!r}.')
    if not kokkos:
        if threads:
            raise LammpsInputError('settings `threads` (Kokkos OpenMP threads) was given without `kokkos`; set '
                                   '`kokkos` to True as well, or drop `threads`.')
        return args
    if gpus and threads:
        raise LammpsInputError(f'Kokkos got both {gpus} GPU(s) and {threads} OpenMP thread(s); give `gpus` for a GPU '
                               'build (-k on g N) or `threads` for a Kokkos-OpenMP build (-k on t N), not both.')
    if gpus < 1 and threads < 1:
        raise LammpsInputError('Kokkos was requested but no GPU resource was: set settings `gpus` to 1 (the scheduler '
                               'GPU request is then added), or request GPUs in the `custom_scheduler_commands` option, '
                               'or set settings `threads` (e.g. 1) for a Kokkos-OpenMP build, or drop `kokkos`.')
    device = ['g', str(gpus)] if gpus else ['t', str(threads)]
    return KOKKOS_ARGS[:2] + device + KOKKOS_ARGS[4:] + args


def check_kokkos_threads(block: PotentialBlock, kokkos: bool, threads: int) -> None:
    """Refuse more Kokkos OpenMP threads than the potential's Kokkos pair style accepts."""
    limit = block.kokkos_max_threads
    if kokkos and limit is not None and threads > limit:
        raise LammpsInputError(f'{block.description} under Kokkos runs on at most {limit} CPU thread(s) (LAMMPS '
                               f'refuses more), but settings `threads` is {threads}; set `threads` to {limit}, or run '
                               'Kokkos on GPUs with `gpus`.')


def scheduler_gpu_commands(gpus: int, scheduler: str = 'slurm') -> str:
    """Scheduler lines requesting ``gpus`` GPUs (``custom_scheduler_commands``). The ``direct`` scheduler requests
    nothing: the job runs on the machine's GPUs."""
    if gpus < 1 or scheduler in ('direct', 'core.direct'):
        return ''
    if scheduler in ('slurm', 'core.slurm'):
        return f'#SBATCH --gres=gpu:{gpus}'
    if scheduler in ('pbspro', 'core.pbspro'):
        return f'#PBS -l select=1:ngpus={gpus}'
    raise LammpsInputError(f'no GPU request known for scheduler {scheduler!r}; put the GPU request in the '
                           '`custom_scheduler_commands` option yourself (e.g. `#SBATCH --gres=gpu:1`).')


_GPU_REQUEST_PATTERNS = (
    r'--gres[= ]\S*gpu(?::[\w.-]+)*?:(\d+)',  # slurm --gres=gpu:2, --gres=gpu:a100:2
    r'--gpus(?:-per-node|-per-task)?[= ](?:[\w.-]+:)?(\d+)',  # slurm --gpus=2, --gpus-per-node=a100:2
    r'ngpus=(\d+)',  # PBS
)


def gpus_in_scheduler_commands(text: str | None) -> int:
    """Number of GPUs requested in ``custom_scheduler_commands`` text (0 when none): the "GPU resource" that a Kokkos
    run needs when it was given as a scheduler option rather than the ``gpus`` setting."""
    import re

    if not text:
        return 0
    for pattern in _GPU_REQUEST_PATTERNS:
        match = re.search(pattern, text)
        if match:
            return int(match.group(1))
    return 0


def resolve_gpus(
    kokkos: bool, settings_gpus: int | None, custom_scheduler_commands: str | None, threads: int = 0
) -> int:
    """GPUs of a run: the ``gpus`` setting or, failing that, the request in the scheduler options; 0 for a
    Kokkos-OpenMP run (``threads``). Kokkos with neither GPUs nor threads is refused (:func:`command_line` names the
    fix); GPU counts that differ are refused too."""
    from_options = gpus_in_scheduler_commands(custom_scheduler_commands)
    gpus = int(settings_gpus or 0)
    if gpus and from_options and gpus != from_options:
        raise LammpsInputError(f'settings `gpus` is {gpus} but custom_scheduler_commands request {from_options} '
                               'GPU(s); give the same number (or only one of them).')
    if not threads:
        gpus = gpus or from_options
    command_line(kokkos, gpus, threads)  # raises for Kokkos without a GPU or threads, or with both
    return gpus


def neighbor_limits(neigh_one: int | None = None, neigh_page: int | None = None) -> str:
    """`` one N page M`` for ``neigh_modify`` (empty for LAMMPS's defaults); LAMMPS needs page ≥ 10 × one."""
    if neigh_one is None and neigh_page is None:
        return ''
    one = NEIGH_ONE_DEFAULT if neigh_one is None else neigh_one
    for name, value in (('neigh_one', one), ('neigh_page', neigh_page)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise LammpsInputError(f'settings `{name}` must be a positive integer (neighbours), got {value!r}.')
    page = max(neigh_page or NEIGH_PAGE_DEFAULT, 10 * one)
    return f' one {one} page {page}'


# -- input script -------------------------------------------------------------------------------------------------
def render_input(
    protocol: md.MDProtocol,
    block: PotentialBlock,
    type_symbols: t.Sequence[str],
    *,
    data_file: str = FILENAME_DATA,
    neigh_one: int | None = None,
    neigh_page: int | None = None,
) -> str:
    """The LAMMPS input for ``protocol`` with the potential ``block``; ``type_symbols`` give the element of each
    type (for the dump). ``neigh_one``/``neigh_page`` raise the neighbour-list limits (``neigh_modify one/page``;
    what the restart after a neighbour-list overflow does). Validates the protocol first."""
    protocol.validate()
    neigh_limits = neighbor_limits(neigh_one, neigh_page)
    if protocol.gamma is not None and not block.supports_gamma:
        raise LammpsInputError(
            f'gamma tracking needs an ACE potential with an active set (pair_style pace/extrapolation); this run uses '
            f'{block.description}. Drop `gamma` from the protocol or use an ACE potential with a .asi file.'
        )
    w: list[str] = []
    add = w.append
    steps = protocol.total_steps
    add(f'# aiida-glassml MD: {len(protocol.stages)} stages, {steps} MD steps ({protocol.total_time:g} ps)')
    for line in protocol.describe():
        add(f'#   {line}')
    add('')
    add('units metal')
    add(f'atom_style {block.atom_style}')
    add('boundary p p p')
    add(f'read_data {data_file}')
    w.extend(block.charge_lines)
    add('')
    w.extend(block.lines)
    add('')
    add('neighbor 2.0 bin')
    add('neigh_modify every 1 delay 0 check yes' + neigh_limits)
    add(f'timestep {protocol.timestep:g}')
    add('thermo_style custom ' + ' '.join(THERMO_KEYWORDS[name] for name in THERMO_COLUMNS))
    add('thermo_modify flush yes')
    add(f'thermo {protocol.thermo_interval}')
    for name in THERMO_COLUMNS:
        add(f'variable th_{name} equal {THERMO_KEYWORDS[name]}')
    elements = ' '.join(type_symbols)
    dump_columns = ' '.join(DUMP_COLUMNS[f] for f in ('positions', *[f for f in protocol.dump_fields if f != 'positions']))

    gamma = protocol.gamma
    if gamma is not None:
        add('')
        add('# ACE extrapolation grade (mainline ML-PACE syntax)')
        add(f'fix pace_gamma all pair {gamma.interval} pace/extrapolation gamma 1')
        add('compute max_pace_gamma all reduce max f_pace_gamma')
        add('variable max_pace_gamma equal c_max_pace_gamma')
        add(f'variable dump_skip equal "c_max_pace_gamma < {_exact(gamma.gamma_lo)}"')
    add('')
    add(f'velocity all create {protocol.resolved_initial_temperature():g} {protocol.seed} mom yes rot yes dist gaussian'
        if protocol.resolved_initial_temperature() > 0 else '# start at rest')

    md_started = False
    ranges = md.stage_step_ranges(protocol)
    for index, stage in enumerate(protocol.stages):
        add('')
        add(f'# stage {index}: {stage.kind}')
        if isinstance(stage, md.Minimize):
            if md_started:  # LAMMPS resets the step only without dumps; they are redefined to append
                w.extend(f'undump {name}' for name in _dump_names(protocol))
            add('min_style cg')
            add(f'minimize {stage.etol:g} {stage.ftol:g} {stage.maxiter} {10 * stage.maxiter}')
            add(f'reset_timestep {ranges[index][0]}')  # minimiser iterations are not MD steps
            if md_started:
                w.extend(_dump_lines(protocol, elements, dump_columns, append=True))
        elif isinstance(stage, md.InstantTemperature):
            if stage.temperature > 0:
                add(f'velocity all create {stage.temperature:g} {protocol.seed + index + 1} mom yes rot yes dist gaussian')
            else:
                add('velocity all set 0.0 0.0 0.0')
        else:
            if not md_started:
                w.extend(_md_outputs(protocol, elements, dump_columns))
                md_started = True
            w.extend(_integrator(protocol, stage, index))
            add(f'run {protocol.stage_steps(stage)}')
            w.extend(_unfix_integrator(protocol))
            if gamma is not None:
                add(f'if "$(step) < {ranges[index][1]}" then "jump SELF gamma_halt"')
        add(f'print "{MARK_STAGE} {index}"')
    add('')
    if not md_started:  # no MD stage: outputs of the final state only
        w.extend(_md_outputs(protocol, elements, dump_columns))
        if gamma is None:
            add('run 0 post no')
    elif not isinstance(protocol.stages[-1], (md.NVT, md.NPT, md.Ramp)):
        add('run 0 post no')  # energies current for the last thermo line
    if gamma is not None and protocol.total_steps % gamma.interval:
        w.extend(_last_step_gamma(protocol, elements, dump_columns))
    if gamma is not None:
        add('jump SELF finish')
        add('label gamma_halt')
        add(f'print "{MARK_GAMMA_HALT} step $(step) max_gamma $(v_max_pace_gamma)"')
        add('label finish')
    # the last step reached is always in the thermo file and the trajectory, as in the ASE runner
    values = ' '.join(f'${{th_{name}}}' for name in THERMO_COLUMNS)
    add(f'print "{values}" append {FILENAME_THERMO} screen no')
    if protocol.dump_interval > 0:
        add(f'if "$(step%{protocol.dump_interval}) != 0" then "write_dump all custom {FILENAME_TRAJECTORY} id type '
            f'element {dump_columns} modify sort id element {elements} format float {DUMP_FLOAT_FORMAT} append yes"')
    add(f'write_dump all custom {FILENAME_FINAL} id type element {dump_columns} modify sort id element {elements} '
        f'format float {DUMP_FLOAT_FORMAT}')
    add(f'print "{MARK_END} step $(step)"')
    return '\n'.join(w) + '\n'


def _exact(value: float) -> str:
    """A float as LAMMPS reads it back exactly (``:g`` keeps 6 digits)."""
    text = repr(float(value))
    return text[:-2] if text.endswith('.0') else text


def _md_outputs(protocol: md.MDProtocol, elements: str, dump_columns: str) -> list[str]:
    values = ' '.join(f'${{th_{name}}}' for name in THERMO_COLUMNS)
    lines = [
        f'fix thermo_out all print {protocol.thermo_interval} "{values}" file {FILENAME_THERMO} screen no '
        f'title "# {" ".join(THERMO_COLUMNS)}"',
    ]
    gamma = protocol.gamma
    if gamma is not None:
        lines.append(f'fix gamma_out all print {gamma.interval} "$(step) ${{max_pace_gamma}}" file {FILENAME_GAMMA} '
                     'screen no title "# step max_gamma"')
    lines += _dump_lines(protocol, elements, dump_columns)
    if gamma is not None:
        lines.append(f'fix gamma_halt all halt {gamma.interval} v_max_pace_gamma >= {_exact(gamma.gamma_hi)} '
                     'error soft')
        # fix halt never looks at the starting structure (the ASE runner halts at step 0 too)
        lines.append('run 0 post no')
        lines.append(f'if "${{max_pace_gamma}} >= {_exact(gamma.gamma_hi)}" then "jump SELF gamma_halt"')
    return lines


def _last_step_gamma(protocol: md.MDProtocol, elements: str, dump_columns: str) -> list[str]:
    """Gamma of a last step that is not a multiple of the interval, recorded, saved and checked as at any interval
    (the ASE runner does the same): fix pair only computes on its own multiples, so it is redefined every step."""
    gamma = protocol.gamma
    return [
        '# the last step is off the gamma interval: evaluate, record and check it once more',
        'fix pace_gamma all pair 1 pace/extrapolation gamma 1',
        'run 0 post no',
        f'print "$(step) ${{max_pace_gamma}}" append {FILENAME_GAMMA} screen no',
        f'if "${{max_pace_gamma}} >= {_exact(gamma.gamma_lo)}" then "write_dump all custom {FILENAME_EXTRAPOLATIVE} '
        f'id type element {dump_columns} f_pace_gamma modify sort id element {elements} format float '
        f'{DUMP_FLOAT_FORMAT} append yes"',
        f'if "${{max_pace_gamma}} >= {_exact(gamma.gamma_hi)}" then "jump SELF gamma_halt"',
    ]


def _dump_names(protocol: md.MDProtocol) -> list[str]:
    return (['trajectory'] if protocol.dump_interval > 0 else []) + (['extrapolative'] if protocol.gamma else [])


def _dump_lines(protocol: md.MDProtocol, elements: str, dump_columns: str, append: bool = False) -> list[str]:
    modify = f'sort id element {elements} format float {DUMP_FLOAT_FORMAT}' + (' append yes' if append else '')
    lines = []
    if protocol.dump_interval > 0:
        lines.append(f'dump trajectory all custom {protocol.dump_interval} {FILENAME_TRAJECTORY} id type element '
                     f'{dump_columns}')
        lines.append(f'dump_modify trajectory {modify}')
    if protocol.gamma is not None:
        lines.append(f'dump extrapolative all custom {protocol.gamma.interval} {FILENAME_EXTRAPOLATIVE} id type '
                     f'element {dump_columns} f_pace_gamma')
        lines.append(f'dump_modify extrapolative skip v_dump_skip {modify}')
    return lines


def _integrator(protocol: md.MDProtocol, stage, index: int) -> list[str]:
    if isinstance(stage, md.Ramp):
        t_start, t_end, npt, pressure = stage.t_start, stage.t_end, stage.ensemble == 'npt', stage.pressure
    else:
        t_start = t_end = stage.temperature
        npt = isinstance(stage, md.NPT)
        pressure = stage.pressure if npt else None
    tdamp, pdamp = f'{protocol.tdamp:g}', f'{protocol.pdamp:g}'
    if protocol.thermostat == 'nose-hoover':
        if npt:
            return [f'fix integrate all npt temp {t_start:g} {t_end:g} {tdamp} iso {pressure:g} {pressure:g} {pdamp}']
        return [f'fix integrate all nvt temp {t_start:g} {t_end:g} {tdamp}']
    seed = protocol.seed + 1000 + index
    integrate = f'fix integrate all nph iso {pressure:g} {pressure:g} {pdamp}' if npt else 'fix integrate all nve'
    return [integrate, f'fix thermostat all langevin {t_start:g} {t_end:g} {tdamp} {seed} zero yes']


def _unfix_integrator(protocol: md.MDProtocol) -> list[str]:
    return ['unfix integrate'] + (['unfix thermostat'] if protocol.thermostat == 'langevin' else [])

"""Read LAMMPS outputs written by inputs from :mod:`aiida_glassml.md.lammps`: errors and stop reason from the log,
the ``fix print`` thermo file, and ``dump custom`` files streamed frame by frame (a dump is never read whole).

Pure Python + numpy; no AiiDA imports.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

import numpy as np

from aiida_glassml.md import lammps as render
from aiida_glassml.md.outputs import THERMO_COLUMNS

#: (regex on an ERROR line, stop_reason, exit-code label); first match wins
ERROR_PATTERNS: list[tuple[str, str, str]] = [
    (r'Lost atoms', 'lost_atoms', 'ERROR_LOST_ATOMS'),
    (r'Neighbor list overflow', 'neighbor_overflow', 'ERROR_NEIGHBOR_LIST_OVERFLOW'),
    (r'Out of range atoms', 'error', 'ERROR_OUT_OF_RANGE_ATOMS'),
    (r'Unrecognized (pair|fix|compute|kspace|atom|dump|min|bond|angle) style|Unrecognized .*style', 'error',
     'ERROR_UNKNOWN_STYLE'),
    (r'Cannot open .*(potential|file)|cannot open .*file', 'error', 'ERROR_POTENTIAL_FILE'),
    (r'Unknown command|Illegal .* command|Incorrect args', 'error', 'ERROR_INVALID_COMMAND'),
    (r'(?i)\b(nan|inf)\b', 'error', 'ERROR_NONFINITE'),
]


@dataclasses.dataclass
class LogSummary:
    stop_reason: str
    exit_code: str | None
    message: str = ''
    n_stages_completed: int = 0
    last_step: int | None = None
    gamma_halt_step: int | None = None
    gamma_halt_value: float | None = None
    wall_time_s: float | None = None
    version: str = ''


def parse_log(text: str) -> LogSummary:
    """Stop reason, completed stages, wall time and version from LAMMPS stdout or log text."""
    version = ''
    match = re.search(r'^LAMMPS \((.+?)\)', text, flags=re.M)
    if match:
        version = match.group(1)
    stages = len(re.findall(rf'^{render.MARK_STAGE} \d+', text, flags=re.M))
    wall = None
    match = re.search(r'Total wall time: (\d+):(\d+):(\d+)', text)
    if match:
        h, m, s = map(int, match.groups())
        wall = float(3600 * h + 60 * m + s)
    errors = [line.strip() for line in text.splitlines() if line.lstrip().startswith('ERROR')]
    if errors:
        message = errors[0]
        for pattern, reason, code in ERROR_PATTERNS:
            if re.search(pattern, message):
                return LogSummary(reason, code, message, stages, wall_time_s=wall, version=version)
        return LogSummary('error', 'ERROR_ENGINE', message, stages, wall_time_s=wall, version=version)
    match = re.search(rf'^{render.MARK_GAMMA_HALT} step (\d+) max_gamma (\S+)', text, flags=re.M)
    if match:
        step, value = int(match.group(1)), float(match.group(2))
        return LogSummary('gamma_halt', 'ERROR_GAMMA_HALT', f'max gamma {value:g} at step {step}', stages, step,
                          step, value, wall, version)
    match = re.search(rf'^{render.MARK_END} step (\d+)', text, flags=re.M)
    if match:
        return LogSummary('completed', None, '', stages, int(match.group(1)), wall_time_s=wall, version=version)
    return LogSummary('error', 'ERROR_ENGINE', 'LAMMPS stopped without an error message (killed or crashed?)',
                      stages, wall_time_s=wall, version=version)


def walltime_summary(summary: LogSummary) -> LogSummary:
    """The summary of a run the scheduler stopped at its walltime (it reported so): restartable, unlike a crash."""
    message = f'stopped by the scheduler walltime after {summary.n_stages_completed} stage(s)'
    if summary.message:
        message += f' ({summary.message})'
    return dataclasses.replace(summary, stop_reason='walltime', exit_code='ERROR_OUT_OF_WALLTIME', message=message)


def parse_thermo(text: str) -> dict[str, np.ndarray]:
    """Columns of the ``fix print`` thermo file; repeated steps (a run boundary) keep the last line."""
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.startswith('#')]
    if not rows:
        return {name: np.zeros(0) for name in THERMO_COLUMNS}
    data = _last_per_step(np.array(rows, dtype=float))
    columns = {name: data[:, i] for i, name in enumerate(THERMO_COLUMNS)}
    columns['step'] = columns['step'].astype(np.int64)
    return columns


def parse_gamma(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and max gamma of the ``fix print`` gamma file; a step printed twice (``fix print`` prints again at the
    start of each run) keeps its last line."""
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.startswith('#')]
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    data = _last_per_step(np.array(rows, dtype=float))
    return data[:, 0].astype(np.int64), data[:, 1]


def _last_per_step(data: np.ndarray) -> np.ndarray:
    """Rows of a table whose first column is the step, keeping the last row of each step, in order."""
    steps = data[:, 0].astype(np.int64)
    _, last = np.unique(steps[::-1], return_index=True)
    return data[np.sort(len(steps) - 1 - last)]


@dataclasses.dataclass
class DumpFrame:
    step: int
    cell: np.ndarray  # (3, 3) rows are vectors, Å
    ids: np.ndarray
    types: np.ndarray
    elements: list
    positions: np.ndarray  # Å, relative to the box origin, wrapped into the box
    images: np.ndarray | None  # (N, 3) integer image flags (ix iy iz), None when the dump has none
    columns: dict  # other per-atom columns by name (vx, fx, f_pace_gamma, ...)


_IMAGE_COLUMNS = ('ix', 'iy', 'iz')


def iter_dump_frames(handle: t.IO[str], select: t.Container[int] | None = None) -> t.Iterator[DumpFrame]:
    """Frames of a ``dump custom`` file, read line by line. With ``select`` (frame indices), other frames are
    skipped without being parsed."""
    index = -1
    line = handle.readline()
    while line:
        if not line.startswith('ITEM: TIMESTEP'):
            line = handle.readline()
            continue
        index += 1
        step = int(handle.readline())
        handle.readline()  # ITEM: NUMBER OF ATOMS
        n_atoms = int(handle.readline())
        bounds_header = handle.readline()
        bounds = [handle.readline().split() for _ in range(3)]
        header = handle.readline().split()[2:]
        wanted = select is None or index in select
        rows = [handle.readline() for _ in range(n_atoms)]
        line = handle.readline()
        if not wanted:
            continue
        cell, origin = _cell_from_bounds(bounds_header, bounds)
        table = [row.split() for row in rows]
        col = {name: i for i, name in enumerate(header)}
        ids = np.array([int(r[col['id']]) for r in table])
        types = np.array([int(r[col['type']]) for r in table])
        elements = [r[col['element']] for r in table] if 'element' in col else []
        xyz = np.array([[float(r[col[c]]) for c in ('x', 'y', 'z')] for r in table]) - origin
        images = None
        if all(c in col for c in _IMAGE_COLUMNS):
            images = np.array([[int(r[col[c]]) for c in _IMAGE_COLUMNS] for r in table], dtype=np.int32)
        extra = {name: np.array([float(r[i]) for r in table]) for name, i in col.items()
                 if name not in ('id', 'type', 'element', 'x', 'y', 'z', *_IMAGE_COLUMNS)}
        yield DumpFrame(step, cell, ids, types, elements, xyz, images, extra)


def count_dump_frames(handle: t.IO[str]) -> int:
    return sum(1 for line in handle if line.startswith('ITEM: TIMESTEP'))


def _cell_from_bounds(header: str, bounds: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    values = [[float(v) for v in row] for row in bounds]
    if 'xy' in header:
        (xlo_b, xhi_b, xy), (ylo_b, yhi_b, xz), (zlo, zhi, yz) = values
        xlo = xlo_b - min(0.0, xy, xz, xy + xz)
        xhi = xhi_b - max(0.0, xy, xz, xy + xz)
        ylo = ylo_b - min(0.0, yz)
        yhi = yhi_b - max(0.0, yz)
    else:
        (xlo, xhi), (ylo, yhi), (zlo, zhi) = (row[:2] for row in values)
        xy = xz = yz = 0.0
    cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo])


# -- what a LAMMPS binary can run (``lmp -h``) ---------------------------------------------------------------------
#: Kokkos backends that run on a GPU
KOKKOS_GPU_BACKENDS = ('CUDA', 'HIP', 'SYCL')


@dataclasses.dataclass
class LammpsBuild:
    """Facts about a LAMMPS executable from its ``-h`` text."""

    version: str
    packages: list
    pair_styles: set
    kokkos_backends: list

    @property
    def has_ace(self) -> bool:
        """ML-PACE: ``pair_style pace`` and ``pace/extrapolation``."""
        return {'pace', 'pace/extrapolation'} <= self.pair_styles

    @property
    def has_ace_kokkos(self) -> bool:
        return {'pace/kk', 'pace/extrapolation/kk'} <= self.pair_styles

    @property
    def kokkos_on_gpu(self) -> bool:
        return any(backend in KOKKOS_GPU_BACKENDS for backend in self.kokkos_backends)

    def describe(self) -> str:
        ace = 'ML-PACE (pace, pace/extrapolation)' if self.has_ace else 'no ML-PACE'
        if self.has_ace_kokkos:
            where = 'GPU' if self.kokkos_on_gpu else 'CPU threads'
            ace += f', Kokkos {"/".join(self.kokkos_backends)} (pace/kk on {where})'
        return f'LAMMPS {self.version or "(version unknown)"}: {ace}'


def parse_help(text: str) -> LammpsBuild:
    """Version, installed packages, pair styles and Kokkos backends from the output of ``lmp -h``."""
    match = re.search(r'Large-scale Atomic/Molecular Massively Parallel Simulator - (.+)', text)
    version = match.group(1).strip() if match else ''
    match = re.search(r'^Installed packages:\s*\n\s*\n?(.*?)\n\s*\n', text, flags=re.M | re.S)
    packages = match.group(1).split() if match else []
    match = re.search(r'^\* Pair styles:\s*\n(.*?)(?=^\* |\Z)', text, flags=re.M | re.S)
    pair_styles = set(match.group(1).split()) if match else set()
    match = re.search(r'^KOKKOS package API:(.*)$', text, flags=re.M)
    backends = match.group(1).split() if match else []
    return LammpsBuild(version, packages, pair_styles, backends)

"""``pace_select`` settings, candidate pool and selection read-back (D-optimal choice of active-learning frames).
No AiiDA imports.

The candidates (frames of MD runs whose extrapolation grade reached ``gamma_lo``) go to ``pace_select`` as one
pacemaker-style pickle: a DataFrame with ``ase_atoms`` and our own columns (:data:`POOL_COLUMNS`), which
``pace_select`` keeps on the rows it selects (``df.iloc[...]``). Each selected row is mapped back to its candidate by
``candidate_index``, checked against a hash of the exact structure, with the hash alone as fallback.

Used by :class:`~aiida_glassml.calculations.pace_select.PaceSelectCalculation` and its parser.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import typing as t

import numpy as np

from aiida_glassml.fitting.settings import FitSettingsError

#: max_select: at most this many frames; gamma_tolerance, maxvol_iters, maxvol_refinement: MaxVol parameters;
#: batch_size: `auto` (from memory_limit), null (all candidates at once) or frames per batch;
#: memory_limit: `auto` (80% of free memory) or e.g. `4GB`, `500MB`.
DEFAULT_SELECTION_SETTINGS: dict[str, t.Any] = {
    'max_select': 500,
    'gamma_tolerance': 1.01,
    'maxvol_iters': 300,
    'maxvol_refinement': 2,
    'batch_size': 'auto',
    'memory_limit': 'auto',
}
#: columns of the candidate pool besides ``ase_atoms``
POOL_COLUMNS = ('candidate_index', 'source', 'source_uuid', 'step', 'frame', 'max_gamma', 'structure_hash')
#: pace_select evaluates the memory limit with eval(): accept only these forms
_MEMORY_LIMIT = re.compile(r'^(auto|\d+(\.\d+)?(GB|MB))$')
_SELECTABLE = re.compile(r'Overall (\d+) structures selected')


class SelectionOutputError(ValueError):
    """The selection written by ``pace_select`` is missing, unreadable or does not match the candidates."""


@dataclasses.dataclass(frozen=True)
class CandidateSource:
    """The candidate frames of one source run: wrapped ``positions`` (n, N, 3) Å, ``cells`` (n, 3, 3), MD ``steps``
    and per-frame ``max_gamma`` (None when the run did not record it)."""

    label: str
    uuid: str | None
    symbols: t.Sequence[str]
    positions: np.ndarray
    cells: np.ndarray
    steps: t.Sequence[int]
    max_gamma: t.Sequence[float] | None = None
    pbc: t.Sequence[bool] = (True, True, True)

    @property
    def n_frames(self) -> int:
        return len(self.positions)


def validate_selection_settings(settings: t.Mapping | None = None) -> dict:
    """Merge ``settings`` over :data:`DEFAULT_SELECTION_SETTINGS` and check the values."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SELECTION_SETTINGS))
    if unknown:
        raise FitSettingsError(
            f'unknown selection setting(s) {unknown}; known: {sorted(DEFAULT_SELECTION_SETTINGS)}.'
        )
    merged = {**DEFAULT_SELECTION_SETTINGS, **settings}
    for key, minimum, typical in (('max_select', 1, 500), ('maxvol_iters', 1, 300), ('maxvol_refinement', 0, 2)):
        if not _is_int(merged[key]) or merged[key] < minimum:
            raise FitSettingsError(f'{key} must be an integer >= {minimum} ({typical} typical), got {merged[key]!r}.')
    tolerance = merged['gamma_tolerance']
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) \
            or tolerance < 1.0:  # fmt: skip
        raise FitSettingsError(f'gamma_tolerance must be >= 1 (MaxVol tolerance, 1.01 typical), got {tolerance!r}.')
    batch = merged['batch_size']
    if not (batch in ('auto', None) or (_is_int(batch) and batch >= 1)):
        raise FitSettingsError(
            f'batch_size must be `auto`, null (all candidates at once) or a positive number of frames, got {batch!r}.'
        )
    memory = merged['memory_limit']
    if not isinstance(memory, str) or not _MEMORY_LIMIT.match(memory):
        raise FitSettingsError(f'memory_limit must be `auto` or a size such as `4GB` or `500MB`, got {memory!r}.')
    return merged


def memory_bytes(limit: str) -> float:
    """Bytes of a memory limit such as ``4GB`` or ``500MB`` (pace_select's units: 2**30, 2**20)."""
    return float(limit[:-2]) * (2**30 if limit.endswith('GB') else 2**20)


def check_memory_limit(settings: t.Mapping, functions_per_element: t.Mapping[str, int],
                       atom_counts: t.Mapping[str, int], n_candidates: int) -> None:  # fmt: skip
    """With a fixed ``memory_limit`` and ``batch_size: auto``, pace_select splits the candidates into batches that fit;
    it fails (no batches) when the limit cannot hold the active set plus one frame's projections. Same estimate."""
    if settings['memory_limit'] == 'auto' or settings['batch_size'] != 'auto' or n_candidates < 1:
        return
    limit = memory_bytes(settings['memory_limit'])
    active_set = 8 * sum(n**2 for n in functions_per_element.values())
    projections = 8 * sum(count * functions_per_element.get(element, 0) for element, count in atom_counts.items())
    if 2 * projections + active_set < limit:
        return
    splits = math.ceil(2 * projections // (limit - active_set)) if limit > active_set else math.inf
    if limit <= active_set or round(n_candidates / splits) < 1:
        needed = (active_set + 2 * projections / n_candidates) / 2**20
        raise FitSettingsError(
            f'memory_limit {settings["memory_limit"]} cannot hold the active set plus one batch of candidates '
            f'(about {math.ceil(needed)}MB needed); raise it or use `auto`.'
        )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def structure_hash(numbers, positions, cell, pbc) -> str:
    """sha256 of a structure's exact numbers, positions, cell and pbc; the recipe of
    :meth:`aiida_glassml.common.frames.FrameSet.frame_hashes`, so the two agree."""
    h = hashlib.sha256()
    h.update(np.asarray(numbers).astype('<i8').tobytes())
    h.update(np.ascontiguousarray(positions, dtype='<f8').tobytes())
    h.update(np.ascontiguousarray(cell, dtype='<f8').tobytes())
    h.update(np.asarray(pbc, dtype=bool).astype('u1').tobytes())
    return h.hexdigest()


def atoms_hash(atoms) -> str:
    return structure_hash(atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc)


def candidate_pool(sources: t.Iterable[CandidateSource]):
    """The candidate DataFrame for ``pace_select``: ``ase_atoms`` plus :data:`POOL_COLUMNS`, sources in the given
    order, frames in trajectory order; ``candidate_index`` is the row number."""
    import pandas as pd
    from ase import Atoms

    rows: dict[str, list] = {name: [] for name in ('ase_atoms', *POOL_COLUMNS)}
    for source in sources:
        positions, cells = np.asarray(source.positions, dtype=float), np.asarray(source.cells, dtype=float)
        steps = np.asarray(source.steps)
        gamma = None if source.max_gamma is None else np.asarray(source.max_gamma, dtype=float)
        n = len(positions)
        if positions.shape[1:] != (len(source.symbols), 3) or cells.shape != (n, 3, 3) or len(steps) != n \
                or (gamma is not None and len(gamma) != n):  # fmt: skip
            raise ValueError(
                f'candidates {source.label!r}: positions {positions.shape}, cells {cells.shape}, {len(steps)} steps'
                f'{"" if gamma is None else f", {len(gamma)} max_gamma"} do not describe the same frames.'
            )
        for frame in range(n):
            atoms = Atoms(symbols=list(source.symbols), positions=positions[frame], cell=cells[frame],
                          pbc=list(source.pbc))  # fmt: skip
            rows['ase_atoms'].append(atoms)
            rows['candidate_index'].append(len(rows['candidate_index']))
            rows['source'].append(source.label)
            rows['source_uuid'].append(source.uuid)
            rows['step'].append(int(steps[frame]))
            rows['frame'].append(frame)
            rows['max_gamma'].append(math.nan if gamma is None else float(gamma[frame]))
            rows['structure_hash'].append(atoms_hash(atoms))
    return pd.DataFrame(rows)


def write_candidate_pool(pool, path) -> None:
    pool.to_pickle(str(path), compression='gzip')


def select_cmdline(settings: t.Mapping, n_candidates: int, data_filename: str, potential_filename: str,
                   asi_filename: str, output_filename: str) -> list[str]:  # fmt: skip
    """Arguments of ``pace_select``; it writes the selected rows of the pool to ``output_filename``."""
    batch = settings['batch_size']
    if batch is None or (batch != 'auto' and batch >= n_candidates):
        batch = 'none'  # pace_select would make n_candidates // batch_size = 0 batches and fail
    return [
        '-p', potential_filename, '-a', asi_filename, '-m', str(settings['max_select']), '-o', output_filename,
        '-b', str(batch), '-g', str(settings['gamma_tolerance']), '-i', str(settings['maxvol_iters']),
        '-r', str(settings['maxvol_refinement']), '-mem', settings['memory_limit'], data_filename,
    ]  # fmt: skip


def read_selection(path):
    """The DataFrame ``pace_select`` wrote; raises :class:`SelectionOutputError` when it is not one with
    ``ase_atoms``."""
    import pandas as pd

    try:
        selected = pd.read_pickle(str(path), compression='gzip')
    except Exception as exc:  # noqa: BLE001 -- any unpickling failure means the same: the file is unusable
        raise SelectionOutputError(f'{path}: not a gzipped pickle ({type(exc).__name__}: {exc}).') from exc
    if not isinstance(selected, pd.DataFrame) or 'ase_atoms' not in selected.columns:
        raise SelectionOutputError(f'{path}: not a pacemaker DataFrame with an ase_atoms column.')
    return selected


def map_selection(selected, pool) -> list[int]:
    """Candidate indices of the ``selected`` rows, in selection order. A row's ``candidate_index`` counts only when
    its structure hash equals that candidate's; otherwise the hash alone finds it (exact duplicates: the first not
    yet taken). Raises :class:`SelectionOutputError` for a frame that is no candidate."""
    hashes = list(pool['structure_hash'])
    by_hash: dict[str, list[int]] = {}
    for index, digest in enumerate(hashes):
        by_hash.setdefault(digest, []).append(index)
    indices = list(selected['candidate_index']) if 'candidate_index' in selected.columns else [None] * len(selected)
    taken: set[int] = set()
    result = []
    for position, (atoms, claimed) in enumerate(zip(selected['ase_atoms'], indices)):
        digest = atoms_hash(atoms)
        if claimed is not None and _is_index(claimed, len(hashes)) and hashes[int(claimed)] == digest:
            index = int(claimed)
        else:
            free = [i for i in by_hash.get(digest, []) if i not in taken]
            if not free:
                raise SelectionOutputError(
                    f'selected frame {position} ({atoms.get_chemical_formula()}) matches no candidate structure.'
                )
            index = free[0]
        taken.add(index)
        result.append(index)
    return result


def _is_index(value, n: int) -> bool:
    try:
        return float(value).is_integer() and 0 <= int(value) < n
    except (TypeError, ValueError):
        return False


def selection_key(position: int) -> str:
    return f'selected_{position:04d}'


def selectable_count(log: str) -> int | None:
    """How many frames pace_select found informative before the ``max_select`` cap (from its log), or None."""
    found = _SELECTABLE.findall(log)
    return int(found[-1]) if found else None


def selection_summary(pool, indices: t.Sequence[int], max_select: int, n_selectable: int | None = None) -> dict:
    """The ``selection`` record: counts and, per selected frame, its key and where it came from."""
    frames = []
    for position, index in enumerate(indices):
        row = pool.iloc[index]
        gamma = float(row['max_gamma'])
        frames.append({
            'key': selection_key(position), 'source': row['source'], 'source_uuid': row['source_uuid'],
            'step': int(row['step']), 'frame': int(row['frame']), 'max_gamma': gamma if math.isfinite(gamma) else None,
            'candidate_index': int(index),
        })  # fmt: skip
    per_source = {str(k): int(v) for k, v in pool['source'].value_counts(sort=False).items()}
    return {
        'n_candidates': len(pool), 'n_candidates_per_source': per_source, 'n_selected': len(frames),
        'n_selectable': n_selectable, 'max_select': int(max_select), 'frames': frames,
    }  # fmt: skip

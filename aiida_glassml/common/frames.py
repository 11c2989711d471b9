"""Labelled frames as plain numpy arrays: the pure core behind ``TrainingSetData``.

No AiiDA imports here. A :class:`FrameSet` holds every frame of a data set as concatenated arrays, validates them,
hashes them and converts to and from ASE ``Atoms``, extxyz and pacemaker's pandas pickle.

On-disk format (``frames.npz`` + ``frames.json``), documented in ``docs/formats.md``:

=================  ===========  =====================================================
key                shape        meaning
=================  ===========  =====================================================
``n_atoms``        (F,)         atoms per frame
``numbers``        (N,)         atomic numbers, frames concatenated
``positions``      (N, 3)       Å
``forces``         (N, 3)       eV/Å
``cells``          (F, 3, 3)    Å, rows are lattice vectors
``pbc``            (F, 3)       periodic directions
``energy``         (F,)         total energy, eV
``stress``         (F, 6)       Voigt (xx yy zz yz xz xy), eV/Å³; NaN where absent
``has_stress``     (F,)         whether the frame has a stress
``magmoms``        (N,)         magnetic moments, μB; NaN where absent
``has_magmoms``    (F,)         whether the frame has magnetic moments
``bader_charges``  (N,)         Bader charges (Z_val - population), e; NaN where absent. Optional: only in sets
                                with Bader charges, so sets without them keep their format and hashes
``has_bader``      (F,)         whether the frame has Bader charges (optional, as ``bader_charges``)
=================  ===========  =====================================================

``frames.json`` holds ``{"schema": "glassml.frames/1", "metadata": [ {...}, ... ]}``, one dict per frame.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import typing as t

import numpy as np

SCHEMA = 'glassml.frames/1'
SAMPLE_TYPES = ('aimd', 'active_learning', 'single_point', 'imported')
METADATA_KEYS = ('source_uuid', 'sample_type', 'temperature', 'iteration', 'composition')
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
#: ``Atoms.info`` keys that are labels, not metadata.
LABEL_INFO_KEYS = frozenset({'energy', 'free_energy', 'stress', 'virial', 'forces', 'magmoms', 'pbc'})


class FrameValidationError(ValueError):
    """A frame or a set of frames is not valid labelled data."""


def _optional_per_atom(frame: t.Mapping, key: str, count: int, index: int) -> np.ndarray | None:
    """Frame ``index``'s optional per-atom ``key`` (magmoms, bader_charges) as (count,) floats, or None if absent."""
    if frame.get(key) is None:
        return None
    values = np.asarray(frame[key], dtype=float).reshape(-1)
    if values.shape != (count,):
        raise FrameValidationError(f'frame {index}: {key} have shape {values.shape} but the frame has {count} atoms.')
    return values


def _default_metadata() -> dict:
    return {'source_uuid': None, 'sample_type': 'imported', 'temperature': None, 'iteration': None, 'composition': None}


def voigt_from_matrix(stress: np.ndarray) -> np.ndarray:
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (6,):
        return stress
    if stress.shape != (3, 3):
        raise FrameValidationError(f'stress must be a 3x3 matrix or 6 Voigt components, got shape {stress.shape}.')
    return np.array([stress[i, j] for i, j in VOIGT])


def matrix_from_voigt(voigt: np.ndarray) -> np.ndarray:
    matrix = np.zeros((3, 3))
    for value, (i, j) in zip(voigt, VOIGT):
        matrix[i, j] = matrix[j, i] = value
    return matrix


@dataclasses.dataclass
class FrameSet:
    """Concatenated arrays of labelled frames. See the module docstring for the layout and units."""

    n_atoms: np.ndarray
    numbers: np.ndarray
    positions: np.ndarray
    forces: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    energy: np.ndarray
    stress: np.ndarray
    has_stress: np.ndarray
    magmoms: np.ndarray
    has_magmoms: np.ndarray
    metadata: list[dict]
    bader_charges: np.ndarray | None = None
    has_bader: np.ndarray | None = None

    ARRAY_KEYS: t.ClassVar[tuple[str, ...]] = (
        'n_atoms', 'numbers', 'positions', 'forces', 'cells', 'pbc', 'energy', 'stress', 'has_stress', 'magmoms',
        'has_magmoms',
    )  # fmt: skip
    #: stored and hashed only when some frame has them (older sets have none)
    OPTIONAL_ARRAY_KEYS: t.ClassVar[tuple[str, ...]] = ('bader_charges', 'has_bader')
    PER_ATOM_KEYS: t.ClassVar[tuple[str, ...]] = ('numbers', 'positions', 'forces', 'magmoms', 'bader_charges')

    def __post_init__(self):
        if self.bader_charges is None:
            self.bader_charges = np.full(len(self.numbers), np.nan)
        if self.has_bader is None:
            self.has_bader = np.zeros(len(self.n_atoms), dtype=bool)

    def _stored_keys(self) -> tuple[str, ...]:
        return self.ARRAY_KEYS + (self.OPTIONAL_ARRAY_KEYS if self.has_bader.any() else ())

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_frames(cls, frames: t.Iterable[dict]) -> 'FrameSet':
        """Build from dicts with keys ``numbers`` (or ``symbols``), ``positions``, ``cell``, ``energy``, ``forces``
        and optionally ``pbc``, ``stress``, ``magmoms`` and ``metadata``."""
        from ase.data import atomic_numbers

        rows = list(frames)
        if not rows:
            raise FrameValidationError('the training set is empty: give at least one labelled frame.')
        n_atoms, numbers, positions, forces, cells, pbc, energy = [], [], [], [], [], [], []
        stress, has_stress, magmoms, has_magmoms, metadata = [], [], [], [], []
        bader, has_bader = [], []
        for index, frame in enumerate(rows):
            if 'numbers' in frame and frame['numbers'] is not None:
                nums = np.asarray(frame['numbers'], dtype=np.int64)
            else:
                symbols = list(frame['symbols'])
                unknown = [s for s in symbols if s not in atomic_numbers or s == 'X']
                if unknown:
                    raise FrameValidationError(
                        f'frame {index}: unknown chemical symbol(s) {sorted(set(unknown))}; use element symbols '
                        'such as Na, Fe, P, O.'
                    )
                nums = np.array([atomic_numbers[s] for s in symbols], dtype=np.int64)
            count = len(nums)
            pos = np.asarray(frame['positions'], dtype=float).reshape(-1, 3) if count else np.zeros((0, 3))
            frc = np.asarray(frame['forces'], dtype=float)
            if frc.shape != (count, 3):
                raise FrameValidationError(
                    f'frame {index}: forces have shape {frc.shape} but the frame has {count} atoms; '
                    f'forces must be ({count}, 3) in eV/Å.'
                )
            n_atoms.append(count)
            numbers.append(nums)
            positions.append(pos)
            forces.append(frc)
            cells.append(np.asarray(frame['cell'], dtype=float).reshape(3, 3))
            pbc.append(np.broadcast_to(np.asarray(frame.get('pbc', True), dtype=bool), (3,)))
            try:
                energy.append(float(frame['energy']))
            except (TypeError, ValueError) as exc:
                raise FrameValidationError(f'frame {index}: energy must be a number in eV, got {frame["energy"]!r}.') from exc
            if frame.get('stress') is not None:
                stress.append(voigt_from_matrix(frame['stress']))
                has_stress.append(True)
            else:
                stress.append(np.full(6, np.nan))
                has_stress.append(False)
            for key, values, present in (('magmoms', magmoms, has_magmoms), ('bader_charges', bader, has_bader)):
                array = _optional_per_atom(frame, key, count, index)
                values.append(np.full(count, np.nan) if array is None else array)
                present.append(array is not None)
            meta = _default_metadata()
            meta.update(frame.get('metadata') or {})
            metadata.append(_normalise_metadata(meta))

        frameset = cls(
            n_atoms=np.array(n_atoms, dtype=np.int64),
            numbers=np.concatenate(numbers),
            positions=np.concatenate(positions).reshape(-1, 3),
            forces=np.concatenate(forces).reshape(-1, 3),
            cells=np.array(cells, dtype=float).reshape(-1, 3, 3),
            pbc=np.array(pbc, dtype=bool).reshape(-1, 3),
            energy=np.array(energy, dtype=float),
            stress=np.array(stress, dtype=float).reshape(-1, 6),
            has_stress=np.array(has_stress, dtype=bool),
            magmoms=np.concatenate(magmoms),
            has_magmoms=np.array(has_magmoms, dtype=bool),
            metadata=metadata,
            bader_charges=np.concatenate(bader),
            has_bader=np.array(has_bader, dtype=bool),
        )
        frameset.validate()
        return frameset

    @classmethod
    def from_atoms(cls, atoms_list: t.Iterable, metadata: t.Sequence[dict] | dict | None = None) -> 'FrameSet':
        """Build from ASE ``Atoms`` that carry a calculator (or ``info``/``arrays``) with energy and forces."""
        atoms_list = list(atoms_list)
        frames = []
        for index, atoms in enumerate(atoms_list):
            energy, forces, stress, magmoms = _labels_from_atoms(atoms, index)
            # Every scalar in ``info`` is kept as metadata, so nothing a file carried is lost; ``metadata`` wins.
            meta = {k: v for k, v in atoms.info.items() if k not in LABEL_INFO_KEYS and _is_scalar(v)}
            if isinstance(metadata, dict):
                meta.update(metadata)
            elif metadata is not None:
                meta.update(metadata[index])
            frames.append({
                'numbers': atoms.numbers, 'positions': atoms.positions, 'cell': atoms.cell.array, 'pbc': atoms.pbc,
                'energy': energy, 'forces': forces, 'stress': stress, 'magmoms': magmoms, 'metadata': meta,
                'bader_charges': atoms.arrays.get('bader_charges'),
            })  # fmt: skip
        return cls.from_frames(frames)

    @classmethod
    def concatenate(cls, framesets: t.Sequence['FrameSet']) -> 'FrameSet':
        framesets = [f for f in framesets if f is not None]
        if not framesets:
            raise FrameValidationError('nothing to concatenate: give at least one non-empty training set.')
        keys = cls.ARRAY_KEYS + cls.OPTIONAL_ARRAY_KEYS
        kwargs = {key: np.concatenate([getattr(f, key) for f in framesets]) for key in keys}
        kwargs['metadata'] = [dict(m) for f in framesets for m in f.metadata]
        return cls(**kwargs)

    # ---------------------------------------------------------------- validation and identity
    def validate(self) -> None:
        from ase.data import chemical_symbols

        n_frames = len(self.n_atoms)
        if n_frames == 0:
            raise FrameValidationError('the training set is empty: give at least one labelled frame.')
        total = int(self.n_atoms.sum())
        for key, shape in (
            ('numbers', (total,)), ('positions', (total, 3)), ('forces', (total, 3)), ('cells', (n_frames, 3, 3)),
            ('pbc', (n_frames, 3)), ('energy', (n_frames,)), ('stress', (n_frames, 6)), ('has_stress', (n_frames,)),
            ('magmoms', (total,)), ('has_magmoms', (n_frames,)), ('bader_charges', (total,)),
            ('has_bader', (n_frames,)),
        ):  # fmt: skip
            if getattr(self, key).shape != shape:
                raise FrameValidationError(f'{key} has shape {getattr(self, key).shape}, expected {shape}.')
        if len(self.metadata) != n_frames:
            raise FrameValidationError(f'{len(self.metadata)} metadata entries for {n_frames} frames.')
        if (self.n_atoms < 1).any():
            raise FrameValidationError(
                f'frame(s) {np.flatnonzero(self.n_atoms < 1)[:5].tolist()} have no atoms; drop them from the data.'
            )
        bad = (self.numbers < 1) | (self.numbers >= len(chemical_symbols))
        if bad.any():
            raise FrameValidationError(
                f'unknown atomic number(s) {sorted(set(self.numbers[bad].tolist()))}; atomic numbers run from 1 '
                f'(H) to {len(chemical_symbols) - 1}.'
            )
        for key, unit in (('energy', 'eV'), ('forces', 'eV/Å'), ('positions', 'Å'), ('cells', 'Å')):
            values = getattr(self, key)
            if not np.all(np.isfinite(values)):
                where = np.argwhere(~np.isfinite(values.reshape(len(values), -1)).all(axis=1)).ravel()[:5].tolist()
                raise FrameValidationError(
                    f'{key} contains NaN or infinite values (first bad rows: {where}); every {key} must be a finite '
                    f'number in {unit}. Drop or relabel those frames.'
                )
        if not np.all(np.isfinite(self.stress[self.has_stress])):
            raise FrameValidationError('stress contains NaN or infinite values in frames that declare a stress.')
        for meta in self.metadata:
            if meta.get('sample_type') not in SAMPLE_TYPES:
                raise FrameValidationError(
                    f'unknown sample_type {meta.get("sample_type")!r}; use one of {", ".join(SAMPLE_TYPES)}.'
                )

    @property
    def n_frames(self) -> int:
        return len(self.n_atoms)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_atoms)])

    @property
    def elements(self) -> list[str]:
        from ase.data import chemical_symbols

        return sorted({chemical_symbols[z] for z in np.unique(self.numbers)})

    def frame_hashes(self) -> list[str]:
        """sha256 of each frame's structure (numbers, positions, cell, pbc): exact duplicates share a hash."""
        hashes = []
        off = self.offsets
        for i in range(self.n_frames):
            h = hashlib.sha256()
            h.update(self.numbers[off[i] : off[i + 1]].astype('<i8').tobytes())
            h.update(np.ascontiguousarray(self.positions[off[i] : off[i + 1]], dtype='<f8').tobytes())
            h.update(np.ascontiguousarray(self.cells[i], dtype='<f8').tobytes())
            h.update(self.pbc[i].astype('u1').tobytes())
            hashes.append(h.hexdigest())
        return hashes

    def _arrays_hash(self):
        h = hashlib.sha256(SCHEMA.encode())
        for key in self._stored_keys():
            array = np.ascontiguousarray(getattr(self, key))
            h.update(key.encode())
            h.update(str(array.dtype.str).encode())
            h.update(array.tobytes())
        return h

    def arrays_sha256(self) -> str:
        """Hash of the labelled arrays only (structures, energies, forces, stress, moments): what a fit sees."""
        return self._arrays_hash().hexdigest()

    def sha256(self) -> str:
        """Hash of the full content, arrays and metadata, independent of the container format."""
        h = self._arrays_hash()
        h.update(json.dumps(self.metadata, sort_keys=True, default=str).encode())
        return h.hexdigest()

    # ---------------------------------------------------------------- selection
    def select(self, indices: t.Sequence[int]) -> 'FrameSet':
        indices = [int(i) for i in indices]
        off = self.offsets
        atom_idx = np.concatenate([np.arange(off[i], off[i + 1]) for i in indices]) if indices else np.zeros(0, int)
        kwargs = {}
        for key in self.ARRAY_KEYS + self.OPTIONAL_ARRAY_KEYS:
            array = getattr(self, key)
            kwargs[key] = array[atom_idx] if key in self.PER_ATOM_KEYS else array[indices]
        kwargs['metadata'] = [dict(self.metadata[i]) for i in indices]
        return FrameSet(**kwargs)

    def deduplicate(self) -> tuple['FrameSet', int]:
        """Drop exact-duplicate structures, keeping the first occurrence. Returns the new set and the count dropped."""
        seen, keep = set(), []
        for index, digest in enumerate(self.frame_hashes()):
            if digest not in seen:
                seen.add(digest)
                keep.append(index)
        return self.select(keep), self.n_frames - len(keep)

    # ---------------------------------------------------------------- conversion
    def to_atoms(self) -> list:
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms_list = []
        off = self.offsets
        for i in range(self.n_frames):
            sl = slice(off[i], off[i + 1])
            atoms = Atoms(numbers=self.numbers[sl], positions=self.positions[sl], cell=self.cells[i], pbc=self.pbc[i])
            results = {'energy': float(self.energy[i]), 'forces': self.forces[sl].copy()}
            if self.has_stress[i]:
                results['stress'] = self.stress[i].copy()
            if self.has_magmoms[i]:
                results['magmoms'] = self.magmoms[sl].copy()
            if self.has_bader[i]:
                atoms.arrays['bader_charges'] = self.bader_charges[sl].copy()
            atoms.calc = SinglePointCalculator(atoms, **results)
            atoms.info.update({k: v for k, v in self.metadata[i].items() if v is not None})
            atoms_list.append(atoms)
        return atoms_list

    def to_npz_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **{key: getattr(self, key) for key in self._stored_keys()})
        return buffer.getvalue()

    def metadata_json(self) -> str:
        return json.dumps({'schema': SCHEMA, 'metadata': self.metadata}, indent=1, default=str)

    @classmethod
    def from_npz(cls, npz_handle, metadata_json: str) -> 'FrameSet':
        payload = json.loads(metadata_json)
        if payload.get('schema') != SCHEMA:
            raise FrameValidationError(f'unknown frames schema {payload.get("schema")!r}, expected {SCHEMA!r}.')
        with np.load(npz_handle, allow_pickle=False) as data:
            kwargs = {key: data[key] for key in cls.ARRAY_KEYS}
            kwargs.update({key: data[key] for key in cls.OPTIONAL_ARRAY_KEYS if key in data.files})
        return cls(**kwargs, metadata=payload['metadata'])

    def write_extxyz(self, path) -> None:
        """Extended XYZ with every float in full precision (ASE's writer rounds per-atom columns to 8 decimals,
        which would change positions and forces on a round trip)."""
        from ase.data import chemical_symbols

        off = self.offsets
        with open(path, 'w', encoding='utf-8') as handle:
            for i in range(self.n_frames):
                sl = slice(off[i], off[i + 1])
                columns = [chemical_symbols_array(self.numbers[sl], chemical_symbols), self.positions[sl],
                           self.forces[sl]]  # fmt: skip
                properties = 'species:S:1:pos:R:3:forces:R:3'
                if self.has_magmoms[i]:
                    columns.append(self.magmoms[sl][:, None])
                    properties += ':magmoms:R:1'
                if self.has_bader[i]:
                    columns.append(self.bader_charges[sl][:, None])
                    properties += ':bader_charges:R:1'
                header = [
                    'Lattice="' + ' '.join(_f(v) for v in self.cells[i].ravel()) + '"',
                    f'Properties={properties}',
                    f'energy={_f(self.energy[i])}',
                ]
                if self.has_stress[i]:
                    header.append('stress="' + ' '.join(_f(v) for v in matrix_from_voigt(self.stress[i]).ravel()) + '"')
                header.append('pbc="' + ' '.join('T' if p else 'F' for p in self.pbc[i]) + '"')
                for key, value in self.metadata[i].items():
                    if value is not None and key not in LABEL_INFO_KEYS:
                        header.append(f'{key}={_extxyz_value(value)}')
                handle.write(f'{self.n_atoms[i]}\n{" ".join(header)}\n')
                for row in zip(*columns):
                    handle.write(' '.join([row[0], *(_f(v) for part in row[1:] for v in part)]) + '\n')

    @classmethod
    def read_extxyz(cls, path, metadata: dict | None = None) -> 'FrameSet':
        from ase.io import read

        try:
            atoms_list = read(str(path), index=':', format='extxyz')
        except KeyError as exc:  # ASE's way of saying "unknown chemical symbol"
            raise FrameValidationError(
                f'{path}: unknown chemical symbol {exc.args[0]!r}; the species column must hold element symbols '
                'such as Na, Fe, P, O.'
            ) from exc
        if not atoms_list:
            raise FrameValidationError(f'{path} holds no frames: the training set would be empty.')
        return cls.from_atoms(atoms_list, metadata=metadata)

    def to_pacemaker_dataframe(self):
        """pacemaker's DataFrame: columns ``energy``, ``forces``, ``ase_atoms`` (+ ``energy_corrected`` when given)."""
        import pandas as pd

        off = self.offsets
        atoms_list = self.to_atoms()
        for atoms in atoms_list:
            atoms.calc = None
        data = {
            'energy': self.energy.copy(),
            'forces': [self.forces[off[i] : off[i + 1]].copy() for i in range(self.n_frames)],
            'ase_atoms': atoms_list,
        }
        frame = pd.DataFrame(data)
        keys = list(METADATA_KEYS) + sorted({k for m in self.metadata for k in m} - set(METADATA_KEYS))
        for key in keys:
            frame[key] = [m.get(key) for m in self.metadata]
        if self.has_stress.any():
            frame['stress'] = [self.stress[i].copy() if self.has_stress[i] else None for i in range(self.n_frames)]
        if self.has_magmoms.any():
            frame['magmoms'] = [
                self.magmoms[off[i] : off[i + 1]].copy() if self.has_magmoms[i] else None for i in range(self.n_frames)
            ]
        return frame

    def write_pacemaker_pickle(self, path) -> None:
        compression = 'gzip' if str(path).endswith(('.gz', '.gzip')) else None
        self.to_pacemaker_dataframe().to_pickle(str(path), compression=compression)

    @classmethod
    def read_pacemaker_pickle(cls, path, metadata: dict | None = None) -> 'FrameSet':
        import pandas as pd

        compression = 'gzip' if str(path).endswith(('.gz', '.gzip')) else None
        try:
            frame = pd.read_pickle(str(path), compression=compression)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise FrameValidationError(f'cannot read the pickle: {exc.strerror or exc}.') from exc
        # Unpickling a damaged file can raise almost anything (EOFError, UnpicklingError, BadGzipFile, zlib.error,
        # AttributeError, ImportError, ...): all of them mean the same user error.
        except Exception as exc:  # noqa: BLE001
            raise FrameValidationError(
                f'not a readable pacemaker pickle ({type(exc).__name__}: {str(exc) or "no detail"}); it may '
                'be truncated or corrupt: write it again with pandas `DataFrame.to_pickle`, or give an extxyz file.'
            ) from exc
        return cls.from_pacemaker_dataframe(frame, metadata=metadata)

    @classmethod
    def from_pacemaker_dataframe(cls, frame, metadata: dict | None = None) -> 'FrameSet':
        try:
            return cls._from_pacemaker_dataframe(frame, metadata)
        except FrameValidationError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:  # e.g. forces that are not numbers
            raise FrameValidationError(f'the pacemaker data frame holds malformed values: {exc}') from exc

    @classmethod
    def _from_pacemaker_dataframe(cls, frame, metadata: dict | None) -> 'FrameSet':
        import pandas as pd
        from ase import Atoms

        if not isinstance(frame, pd.DataFrame):
            raise FrameValidationError(
                f'the pickle holds a {type(frame).__name__}, not a pacemaker pandas DataFrame (columns energy, forces, '
                'ase_atoms).'
            )
        missing = {'energy', 'forces', 'ase_atoms'} - set(frame.columns)
        if missing:
            raise FrameValidationError(
                f'pacemaker data frame lacks column(s) {sorted(missing)}; it needs energy, forces and ase_atoms.'
            )
        # Columns other than the labels are kept as per-frame metadata (``name``, ``energy_corrected``, ...).
        extra_columns = [c for c in frame.columns if c not in ('energy', 'forces', 'ase_atoms', 'stress', 'magmoms')]
        rows = []
        for index, (_, row) in enumerate(frame.iterrows()):
            atoms = row['ase_atoms']
            if not isinstance(atoms, Atoms):
                raise FrameValidationError(
                    f'row {index} of the pacemaker data frame: ase_atoms holds a {type(atoms).__name__}, not an ASE '
                    'Atoms object.'
                )
            meta = {k: _plain(row[k]) for k in extra_columns if _present(row[k]) and _is_scalar(row[k])}
            if 'iteration' in meta and 'sample_type' not in meta:
                meta['sample_type'] = 'imported'
            meta.update(metadata or {})
            stress = row['stress'] if 'stress' in frame.columns and _present(row['stress']) else None
            magmoms = row['magmoms'] if 'magmoms' in frame.columns and _present(row['magmoms']) else None
            rows.append({
                'numbers': atoms.numbers, 'positions': atoms.positions, 'cell': atoms.cell.array, 'pbc': atoms.pbc,
                'energy': row['energy'], 'forces': np.asarray(row['forces'], dtype=float), 'stress': stress,
                'magmoms': magmoms, 'metadata': meta,
            })  # fmt: skip
        if not rows:
            raise FrameValidationError('the pacemaker data frame has no rows: the training set would be empty.')
        return cls.from_frames(rows)


def _normalise_metadata(meta: dict) -> dict:
    """Typed metadata: file formats (extxyz comment lines) may hand numbers back as strings."""
    meta = {key: _plain(value) for key, value in meta.items()}
    for key, kind in (('iteration', int), ('temperature', float)):
        if meta.get(key) is not None:
            try:
                meta[key] = kind(meta[key])
            except (TypeError, ValueError) as exc:
                raise FrameValidationError(f'metadata {key}={meta[key]!r} is not a number.') from exc
    for key in ('source_uuid', 'composition'):
        if meta.get(key) is not None:
            meta[key] = str(meta[key])
    return meta


def _f(value) -> str:
    """Shortest repr that reads back to the same float64."""
    return repr(float(value))


def _extxyz_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return 'T' if value else 'F'
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _f(value)
    text = str(value).replace('"', "'")
    return f'"{text}"'


def chemical_symbols_array(numbers, symbols) -> list[str]:
    return [symbols[z] for z in numbers]


def _is_scalar(value) -> bool:
    return isinstance(value, (str, bool, int, float, np.integer, np.floating, np.bool_))


def _present(value) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and np.isnan(value):
        return False
    return True


def _plain(value):
    """numpy scalars to Python ones, so metadata stays JSON-serialisable."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _labels_from_atoms(atoms, index: int):
    calc = atoms.calc
    results = getattr(calc, 'results', {}) if calc is not None else {}
    energy = results.get('energy', atoms.info.get('energy'))
    forces = results.get('forces', atoms.arrays.get('forces'))
    stress = results.get('stress', atoms.info.get('stress'))
    if stress is None and atoms.info.get('virial') is not None:
        # extxyz convention (QUIP, MACE, nequip): virial = -stress * volume, in eV.
        virial = np.asarray(atoms.info['virial'], dtype=float).reshape(3, 3)
        stress = -virial / atoms.get_volume()
    magmoms = results.get('magmoms', atoms.arrays.get('magmoms'))
    if energy is None or forces is None:
        raise FrameValidationError(
            f'frame {index} has no energy or forces: every training frame needs both (extxyz: energy= in the '
            'comment line and a forces column).'
        )
    return energy, forces, stress, magmoms

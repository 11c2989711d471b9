"""``TrainingSetData``: labelled frames (structure, energy, forces, optional stress, magnetic moments and Bader
charges)."""

from __future__ import annotations

import functools
import io
import pathlib
import typing as t

from aiida.orm import Data
from aiida.orm.nodes.caching import NodeCaching

from aiida_glassml.common.frames import FrameSet, FrameValidationError

__all__ = ('FrameValidationError', 'TrainingSetData')


class TrainingSetCaching(NodeCaching):
    """A training set's hash is what a fit sees: the labelled arrays and the level of theory, not the per-frame
    metadata (which calculation each frame came from) nor the npz bytes (zip time stamps). So a rerun whose labels came
    from the cache, with new calculation UUIDs in the metadata, also reuses the fits and everything after them."""

    def get_objects_to_hash(self) -> dict:
        objects = super().get_objects_to_hash()
        objects['attributes'] = {k: v for k, v in objects['attributes'].items() if k != 'sha256'}
        objects['repository_hash'] = self._node._read_frameset().arrays_sha256()
        return objects


class TrainingSetData(Data):
    """Labelled frames, stored as ``frames.npz`` + ``frames.json`` in the node repository (format: docs/formats.md).

    Attributes: ``n_frames``, ``n_atoms_total``, ``elements``, ``sha256`` (of the content), ``sample_types`` and
    ``level_of_theory`` (what the labels were computed with, :mod:`aiida_glassml.labeling.level_of_theory`; None:
    unknown, e.g. a file imported without it). Validation happens in the constructor, so invalid data never reaches
    the database.
    """

    NPZ = 'frames.npz'
    JSON = 'frames.json'
    _CLS_NODE_CACHING = TrainingSetCaching

    def __init__(self, frameset: FrameSet | None = None, level_of_theory: dict | None = None, **kwargs):
        from aiida_glassml.labeling.level_of_theory import validate_level

        level = validate_level(level_of_theory)  # before anything is set: a bad level never makes a node
        super().__init__(**kwargs)
        if frameset is not None:
            self._set_frameset(frameset)
            self.base.attributes.set('level_of_theory', level)

    def _set_frameset(self, frameset: FrameSet) -> None:
        frameset.validate()
        self.base.repository.put_object_from_bytes(frameset.to_npz_bytes(), self.NPZ)
        self.base.repository.put_object_from_bytes(frameset.metadata_json().encode(), self.JSON)
        self.base.attributes.set_many({
            'n_frames': frameset.n_frames,
            'n_atoms_total': int(frameset.n_atoms.sum()),
            'elements': frameset.elements,
            'sha256': frameset.sha256(),
            'sample_types': sorted({m['sample_type'] for m in frameset.metadata}),
            'has_stress': bool(frameset.has_stress.any()),
            'has_magmoms': bool(frameset.has_magmoms.any()),
            'has_bader_charges': bool(frameset.has_bader.any()),
            'format': 'glassml.frames/1 (npz+json)',
        })  # fmt: skip

    # ---------------------------------------------------------------- constructors
    # ``level_of_theory``: what the labels were computed with (a dict with at least ``engine``), None if unknown.
    @classmethod
    def from_atoms(cls, atoms_list: t.Iterable, metadata=None, level_of_theory: dict | None = None, **kwargs):
        return cls(FrameSet.from_atoms(atoms_list, metadata=metadata), level_of_theory=level_of_theory, **kwargs)

    @classmethod
    def from_extxyz(cls, path: str | pathlib.Path, metadata: dict | None = None, level_of_theory: dict | None = None,
                    **kwargs) -> 'TrainingSetData':  # fmt: skip
        return cls(FrameSet.read_extxyz(path, metadata=metadata), level_of_theory=level_of_theory, **kwargs)

    @classmethod
    def from_pacemaker_pickle(cls, path: str | pathlib.Path, metadata: dict | None = None,
                              level_of_theory: dict | None = None, **kwargs):  # fmt: skip
        return cls(FrameSet.read_pacemaker_pickle(path, metadata=metadata), level_of_theory=level_of_theory, **kwargs)

    @classmethod
    def from_file(cls, path: str | pathlib.Path, metadata: dict | None = None, level_of_theory: dict | None = None,
                  **kwargs) -> 'TrainingSetData':  # fmt: skip
        """Import by file type: pacemaker pickle (``.pckl``, ``.pckl.gzip``, ``.pkl.gz``) or extxyz (anything else)."""
        if is_pickle_path(path):
            return cls.from_pacemaker_pickle(path, metadata=metadata, level_of_theory=level_of_theory, **kwargs)
        return cls.from_extxyz(path, metadata=metadata, level_of_theory=level_of_theory, **kwargs)

    def find_stored(self) -> 'TrainingSetData | None':
        """The first stored training set with the same content as this one (frames, labels, per-frame metadata and
        level of theory), or None: imports reuse it, as potentials are reused by hash."""
        from aiida.orm import QueryBuilder

        query = QueryBuilder().append(TrainingSetData, filters={'attributes.sha256': self.sha256}, project='*')
        for node in query.order_by({TrainingSetData: {'id': 'asc'}}).all(flat=True):
            if node.uuid != self.uuid and node.level_of_theory == self.level_of_theory:
                return node
        return None

    # ---------------------------------------------------------------- access
    @property
    def n_frames(self) -> int:
        return self.base.attributes.get('n_frames')

    @property
    def n_atoms_total(self) -> int:
        return self.base.attributes.get('n_atoms_total')

    @property
    def elements(self) -> list[str]:
        return self.base.attributes.get('elements')

    @property
    def sha256(self) -> str:
        return self.base.attributes.get('sha256')

    @property
    def level_of_theory(self) -> dict | None:
        """The level of theory of the labels; None when unknown."""
        return self.base.attributes.get('level_of_theory', None)

    def get_frameset(self) -> FrameSet:
        if self.is_stored:
            return _load_frameset(self.uuid)
        return self._read_frameset()

    def _read_frameset(self) -> FrameSet:
        npz = self.base.repository.get_object_content(self.NPZ, mode='rb')
        meta = self.base.repository.get_object_content(self.JSON, mode='r')
        return FrameSet.from_npz(io.BytesIO(npz), meta)

    def get_atoms(self) -> list:
        """ASE ``Atoms`` with a ``SinglePointCalculator`` holding energy, forces, stress and magmoms."""
        return self.get_frameset().to_atoms()

    def export_extxyz(self, path: str | pathlib.Path) -> None:
        self.get_frameset().write_extxyz(path)

    def export_pacemaker_pickle(self, path: str | pathlib.Path) -> None:
        self.get_frameset().write_pacemaker_pickle(path)

    def export(self, path: str | pathlib.Path) -> None:  # type: ignore[override]
        """Write by extension: a pacemaker pickle for the ``PICKLE_SUFFIXES``, otherwise extxyz."""
        if is_pickle_path(path):
            self.export_pacemaker_pickle(path)
        else:
            self.export_extxyz(path)


PICKLE_SUFFIXES = ('.pckl', '.pkl', '.pckl.gzip', '.pkl.gz', '.pckl.gz', '.pkl.gzip')


def is_pickle_path(path: str | pathlib.Path) -> bool:
    return str(path).endswith(PICKLE_SUFFIXES)


@functools.lru_cache(maxsize=8)
def _load_frameset(uuid: str) -> FrameSet:
    """Stored nodes are immutable, so their arrays can be cached by UUID; read-only, so no caller can change them."""
    from aiida.orm import load_node

    frameset = load_node(uuid)._read_frameset()
    for key in FrameSet.ARRAY_KEYS + FrameSet.OPTIONAL_ARRAY_KEYS:
        getattr(frameset, key).setflags(write=False)
    return frameset

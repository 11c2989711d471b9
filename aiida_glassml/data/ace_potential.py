"""``AcePotentialData``: a pacemaker ACE potential (B-basis ``.yaml``, ``.yace`` and optional active set ``.asi``)."""

from __future__ import annotations

import pathlib
import tempfile
import typing as t

from aiida.orm import Data, QueryBuilder

from aiida_glassml.common import ace
from aiida_glassml.common.ace import AcePotentialError

__all__ = ('AcePotentialData', 'AcePotentialError')


class AcePotentialData(Data):
    """An ACE potential. Files in the repository: ``potential.yaml``, ``potential.yace``, optional ``potential.asi``.

    Attributes: ``elements`` (file order), ``cutoff`` (Å), ``functions_per_element``, ``embedding``,
    ``reference_energy`` (when the fit recorded it), ``sha256_yaml``/``sha256_yace``/``sha256_asi`` and ``metrics``.
    """

    YAML = 'potential.yaml'
    YACE = 'potential.yace'
    ASI = 'potential.asi'

    def __init__(
        self,
        yaml: str | pathlib.Path | bytes | None = None,
        yace: str | pathlib.Path | bytes | None = None,
        asi: str | pathlib.Path | bytes | None = None,
        metrics: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if yaml is not None:
            self._set_files(_read(yaml), _read(yace) if yace is not None else None, _read(asi) if asi else None)
        if metrics:
            self.base.attributes.set('metrics', dict(metrics))

    def _set_files(self, yaml_bytes: bytes, yace_bytes: bytes | None, asi_bytes: bytes | None) -> None:
        info = ace.parse_bbasis_yaml(yaml_bytes)
        if asi_bytes is not None:
            ace.check_asi_matches(ace.read_asi_elements(asi_bytes), info['elements'])
        if yace_bytes is None:
            yace_bytes = ace.yace_from_yaml(yaml_bytes)
        else:  # one node, one potential: LAMMPS runs the .yace, pyace the .yaml
            ace.check_yace_matches(ace.read_yace_elements(yace_bytes), info['elements'])
            ace.check_yace_is_yaml(yace_bytes, yaml_bytes)
        self.base.repository.put_object_from_bytes(yaml_bytes, self.YAML)
        self.base.repository.put_object_from_bytes(yace_bytes, self.YACE)
        attributes = {
            **info,
            'sha256_yaml': ace.sha256_bytes(yaml_bytes),
            'sha256_yace': ace.sha256_bytes(yace_bytes),
            'has_active_set': asi_bytes is not None,
        }
        if asi_bytes is not None:
            attributes['sha256_asi'] = ace.sha256_bytes(asi_bytes)
        if asi_bytes is not None:
            self.base.repository.put_object_from_bytes(asi_bytes, self.ASI)
        self.base.attributes.set_many(attributes)

    @classmethod
    def get_or_create(cls, yaml, yace=None, asi=None, metrics: dict | None = None, store: bool = True):
        """Return the stored potential with the same yaml (and asi) content, or create and store a new one."""
        yaml_bytes = _read(yaml)
        asi_bytes = _read(asi) if asi is not None else None
        existing = cls.find_stored(yaml_bytes, asi_bytes)
        if existing is not None:
            return existing
        node = cls(yaml=yaml_bytes, yace=yace, asi=asi_bytes, metrics=metrics)
        return node.store() if store else node

    @classmethod
    def find_stored(cls, yaml: bytes, asi: bytes | None = None) -> 'AcePotentialData | None':
        """The first stored potential with this yaml (and active set) content, or None."""
        filters = {'attributes.sha256_yaml': ace.sha256_bytes(yaml), 'attributes.has_active_set': asi is not None}
        if asi is not None:
            filters['attributes.sha256_asi'] = ace.sha256_bytes(asi)
        query = QueryBuilder().append(cls, filters=filters, project='*').order_by({cls: {'id': 'asc'}})
        return query.first(flat=True)

    # ---------------------------------------------------------------- access
    @property
    def elements(self) -> list[str]:
        return self.base.attributes.get('elements')

    @property
    def cutoff(self) -> float:
        return self.base.attributes.get('cutoff')

    @property
    def has_active_set(self) -> bool:
        return bool(self.base.attributes.get('has_active_set', False))

    @property
    def reference_energy(self) -> dict | None:
        return self.base.attributes.get('reference_energy', None)

    @property
    def metrics(self) -> dict | None:
        return self.base.attributes.get('metrics', None)

    def write_files(self, folder: str | pathlib.Path) -> dict[str, pathlib.Path]:
        """Write the files into ``folder`` and return their paths by kind (``yaml``, ``yace``, ``asi``)."""
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for kind, name in (('yaml', self.YAML), ('yace', self.YACE), ('asi', self.ASI)):
            if kind == 'asi' and not self.has_active_set:
                continue
            path = folder / name
            path.write_bytes(self.base.repository.get_object_content(name, mode='rb'))
            paths[kind] = path
        return paths

    def _cached_files(self) -> dict[str, pathlib.Path]:
        folder = pathlib.Path(tempfile.gettempdir(), 'glassml-potentials', self.base.attributes.get('sha256_yaml'))
        if self.has_active_set:
            folder = folder.with_name(folder.name + '-' + self.base.attributes.get('sha256_asi')[:16])
        expected = [self.YAML, self.YACE] + ([self.ASI] if self.has_active_set else [])
        hashes = {self.YAML: 'sha256_yaml', self.YACE: 'sha256_yace', self.ASI: 'sha256_asi'}
        intact = all(
            (folder / n).exists() and ace.sha256_bytes((folder / n).read_bytes()) == self.base.attributes.get(hashes[n])
            for n in expected
        )
        if not intact:  # missing, or changed by someone since: write afresh
            return self.write_files(folder)
        return {k: folder / n for k, n in (('yaml', self.YAML), ('yace', self.YACE), ('asi', self.ASI)) if n in expected}

    def get_calculator(self, active_set: bool = True, **kwargs):
        """A pyace ``PyACECalculator``; with an active set it reports the extrapolation grade ``gamma`` per atom."""
        from pyace import PyACECalculator

        paths = self._cached_files()
        calc = PyACECalculator(basis_set=str(paths['yaml']), **kwargs)
        if active_set and 'asi' in paths:
            calc.set_active_set(str(paths['asi']))
        return calc

    def lammps_pair_lines(self, elements_by_type: t.Sequence[str] | None = None, extrapolation: bool = False):
        """``pair_style``/``pair_coeff`` lines for ``pair_style pace`` or ``pace/extrapolation`` (needs the .asi)."""
        if extrapolation and not self.has_active_set:
            raise AcePotentialError('pace/extrapolation needs an active set (.asi); this potential has none.')
        elements_by_type = list(elements_by_type or self.elements)
        missing = sorted(set(elements_by_type) - set(self.elements))
        if missing:
            raise AcePotentialError(f'the potential has no parameters for {missing}; it covers {self.elements}.')
        return ace.lammps_pair_lines(elements_by_type, extrapolation=extrapolation)

    def check_covers(self, symbols: t.Iterable[str]) -> None:
        missing = sorted(set(symbols) - set(self.elements))
        if missing:
            raise AcePotentialError(
                f'the potential covers {self.elements} but the structure also contains {missing}; fit or choose a '
                'potential that includes every element of the structure.'
            )


def _read(source) -> bytes:
    if isinstance(source, bytes):
        return source
    path = pathlib.Path(source)
    if not path.is_file():
        raise AcePotentialError(f'potential file not found: {path}')
    return path.read_bytes()

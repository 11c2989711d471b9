"""``MlipPotentialData``: a machine-learned interatomic potential run through its own ASE calculator (CHGNet,
SevenNet, a user's MACE or GRACE model...), with an optional model file in the node repository."""

from __future__ import annotations

import pathlib
import tempfile
import typing as t

from aiida.orm import Data

from aiida_glassml.common import mlip
from aiida_glassml.common.mlip import MlipError

__all__ = ('MlipError', 'MlipPotentialData', 'job_code')


class MlipPotentialData(Data):
    """An MLIP: the ASE calculator that loads it and, optionally, its model file (repository ``model<suffix>``).

    Attributes: ``calculator`` (``module:Class`` or ``module:Class.factory``), ``kwargs``, ``model_keyword`` (the
    keyword that takes the model path), ``model_filename``/``sha256_model`` (a stored file), ``shipped_model``
    (weights shipped in the package: package, path, sha256, name), ``package``/``package_version`` (at creation),
    ``device``/``device_keyword``/``device_fallback``, ``elements``, free-form ``provenance`` and ``python_code`` (the
    label of the code whose python loads the calculator when that is another environment, e.g. ``mace-python``: the
    load check then runs in that python, and jobs running the MLIP must run on that code).

    The model is loaded once on creation (on the CPU), so a file that does not load, an unknown calculator or a
    device that is not present is refused before anything is stored. ``MlipPotentialData.chgnet()`` and
    ``.sevennet(model='7net-0')`` give the universal models whose weights ship in the wheels (nothing downloads).
    """

    MODEL = 'model'

    def __init__(
        self,
        calculator: str | None = None,
        model_file: str | pathlib.Path | None = None,
        model_keyword: str | None = None,
        kwargs: dict | None = None,
        elements: t.Sequence[str] | None = None,
        device: str = 'cpu',
        device_fallback: bool = False,
        device_keyword: str | None = None,
        provenance: dict | None = None,
        python_code: str | None = None,
        _shipped: dict | None = None,
        _loaded: dict | None = None,
        **node_kwargs,
    ):
        super().__init__(**node_kwargs)
        if calculator is None:
            return  # loading from the database
        if not isinstance(calculator, str) or not calculator.strip():
            raise MlipError(f'give the calculator as an import path "module:Class", got {calculator!r}.')
        python = None
        if python_code is not None:  # another environment loads it: no import here
            python = _python_of(python_code) if _loaded is None else None
        else:
            try:
                factory = mlip.import_object(calculator)
            except (ImportError, AttributeError, ValueError) as exc:
                raise MlipError(f'unknown calculator {calculator!r} ({type(exc).__name__}: {exc}); give an importable '
                                '"module:Class", e.g. "sevenn.calculator:SevenNetCalculator", or the `python_code` '
                                'whose environment has it.') from None  # fmt: skip
            if device_keyword is None:
                device_keyword = (_shipped or {}).get('device_keyword') or mlip.device_keyword_of(factory)
        mlip.resolve_device(device, device_fallback)  # not present here and no fallback: refused now
        content = None
        if model_file is not None:
            path = pathlib.Path(model_file)
            if not path.is_file():
                raise MlipError(f'model file {path} not found.')
            if not model_keyword:
                raise MlipError(f'give `model_keyword`, the keyword of {calculator} that takes the model path (e.g. '
                                '"model" for SevenNet, "model_paths" for MACE).')  # fmt: skip
            content = path.read_bytes()
            self.base.attributes.set_many({'model_filename': self.MODEL + ''.join(path.suffixes),
                                           'sha256_model': mlip.sha256_file(path)})  # fmt: skip
        attributes = {
            'calculator': calculator,
            'kwargs': dict(kwargs or {}),
            'model_keyword': model_keyword,
            'shipped_model': _shipped and {k: _shipped[k] for k in ('family', 'package', 'path', 'sha256', 'name')},
            'package': mlip.distribution_name(calculator) if python_code is None else None,
            'package_version': mlip.distribution_version(calculator) if python_code is None else None,
            'device': device,
            'device_keyword': device_keyword,
            'device_fallback': bool(device_fallback),
            'provenance': dict(provenance or {}),
            'python_code': python_code,
        }
        self.base.attributes.set_many(attributes)
        # load once on the CPU: proves the file loads with this calculator, and says which elements it covers
        calc = None
        label = str(model_file) if model_file is not None else None
        with tempfile.TemporaryDirectory() as tmp:
            if content is not None:
                pathlib.Path(tmp, self.model_filename).write_bytes(content)
            if python_code is None:
                calc = mlip.build_calculator(self.calculator_spec(), tmp, device='cpu', model_label=label)
                from_model = mlip.elements_of(calc)
            else:
                loaded = _loaded or mlip.load_in_python(python, self.calculator_spec(), tmp, model_label=label,
                                                        where=f'code {python_code}')  # fmt: skip
                from_model = loaded.get('elements')
                self.base.attributes.set_many({key: loaded.get(key) for key in
                                               ('package', 'package_version', 'device_keyword')})  # fmt: skip
        if elements is not None:
            elements = _check_symbols(elements)
            if from_model is not None:
                mlip.check_covers(from_model, elements, name=f'the model ({calculator})')
        elif from_model is None:
            raise MlipError(f'{calculator} does not say which elements its model covers; give `elements=[...]`.')
        self.base.attributes.set('elements', list(elements if elements is not None else from_model))
        if content is not None:
            self.base.repository.put_object_from_bytes(content, self.model_filename)
        if device == 'cpu' and calc is not None:  # the check load is the calculator: keep it
            self._calculators = {'cpu': calc}

    # ---------------------------------------------------------------- shipped universal models
    @classmethod
    def chgnet(cls, model: str = '0.3.0', device: str = 'cpu', device_fallback: bool = False, **kwargs):
        """CHGNet 0.3.0, whose weights ship in the chgnet wheel (MPtrj, PBE/PBE+U)."""
        return cls._from_shipped('chgnet', model, device, device_fallback, kwargs)

    @classmethod
    def sevennet(cls, model: str = '7net-0', modal: str | None = None, device: str = 'cpu',
                 device_fallback: bool = False, **kwargs):  # fmt: skip
        """SevenNet-0 (``7net-0``) or SevenNet-MF-0 (``7net-mf-0``, with ``modal`` PBE or R2SCAN), shipped in the
        sevenn wheel."""
        mlip.check_modal(mlip.shipped_model('sevennet', model), modal)
        if modal is not None:
            kwargs['modal'] = modal
        return cls._from_shipped('sevennet', model, device, device_fallback, kwargs)

    @classmethod
    def _from_shipped(cls, family: str, model: str, device: str, device_fallback: bool, kwargs: dict):
        entry = mlip.shipped_model(family, model)
        path = mlip.locate_shipped(entry['package'], entry['path'])
        shipped = {**entry, 'sha256': mlip.sha256_file(path)}
        provenance = {**entry['provenance'], 'weights': f'shipped in {entry["package"]} '
                      f'{mlip.distribution_version(entry["package"])}: {entry["path"]}'}  # fmt: skip
        return cls(calculator=entry['calculator'], model_keyword=entry['model_keyword'],
                   kwargs={**entry['kwargs'], **kwargs}, device=device, device_fallback=device_fallback,
                   provenance=provenance, _shipped=shipped)  # fmt: skip

    # ---------------------------------------------------------------- access
    @property
    def elements(self) -> list[str]:
        return list(self.base.attributes.get('elements'))

    @property
    def calculator(self) -> str:
        return self.base.attributes.get('calculator')

    @property
    def device(self) -> str:
        return self.base.attributes.get('device')

    @property
    def package_version(self) -> str | None:
        return self.base.attributes.get('package_version')

    @property
    def provenance(self) -> dict:
        return dict(self.base.attributes.get('provenance', {}))

    @property
    def python_code(self) -> str | None:
        """The label of the code whose python loads this MLIP (its own environment, e.g. ``mace-python``); None: the
        python of this environment (``glassml-python``). Jobs that run the MLIP run on that code."""
        return self.base.attributes.get('python_code', None)

    def check_code(self, code) -> None:
        """Refuse a job ``code`` other than :attr:`python_code` (one line naming both)."""
        if self.python_code is None or code is None:
            return
        own = _load_python_code(self.python_code)
        if own.uuid != code.uuid:
            raise MlipError(f'this MLIP ({self.calculator}) loads only in the python of code {own.full_label}, but the '
                            f'job runs on code {code.full_label}; give code={own.full_label} (or leave it to the '
                            'builder).')  # fmt: skip

    @property
    def model_filename(self) -> str | None:
        return self.base.attributes.get('model_filename', None)

    @property
    def has_model_file(self) -> bool:
        return self.model_filename is not None

    def calculator_spec(self) -> dict:
        """The ``type: mlip`` spec of :mod:`aiida_glassml.common.mlip` (the model file named relative to the folder
        that :meth:`write_files` fills)."""
        attributes = self.base.attributes
        shipped = attributes.get('shipped_model', None)
        model = None
        if self.has_model_file:
            model = {'file': self.model_filename}
        elif shipped:
            model = {'package': shipped['package'], 'path': shipped['path'], 'sha256': shipped['sha256']}
        return {
            'type': 'mlip',
            'name': self.calculator,
            'kwargs': dict(attributes.get('kwargs') or {}),
            'model': model,
            'model_keyword': attributes.get('model_keyword'),
            'device': self.device,
            'device_keyword': attributes.get('device_keyword'),
            'device_fallback': attributes.get('device_fallback', False),
            'package': attributes.get('package'),
            'package_version': self.package_version,
        }

    def calculator_input(self) -> dict:
        """``{name, kwargs}`` for an ASE ``calculator`` input (the study's melt-quench, elastic...): a shipped model
        through :func:`aiida_glassml.common.mlip.shipped_calculator` (installed weights, checked by hash), or a
        calculator without a model file as it is. A model file needs the ``potential`` input of AseMDCalculation."""
        attributes = self.base.attributes
        kwargs = dict(attributes.get('kwargs') or {})
        shipped = attributes.get('shipped_model', None)
        if self.has_model_file:
            raise MlipError('this MLIP has its own model file, which only the `potential` input of AseMDCalculation '
                            'copies to the job; the `calculator` form takes the shipped models.')  # fmt: skip
        if shipped:
            return {'name': 'aiida_glassml.common.mlip:shipped_calculator',
                    'kwargs': {'family': shipped['family'], 'model': shipped['name'], 'sha256': shipped['sha256'],
                               'device': self.device, 'device_fallback': attributes.get('device_fallback', False),
                               **kwargs}}  # fmt: skip
        if attributes.get('device_keyword'):
            kwargs[attributes.get('device_keyword')] = self.device
        return {'name': self.calculator, 'kwargs': kwargs}

    def write_files(self, folder: str | pathlib.Path) -> dict[str, pathlib.Path]:
        """Write the model file (if any) into ``folder``; returns ``{'model': path}`` or ``{}``."""
        if not self.has_model_file:
            return {}
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.model_filename
        path.write_bytes(self.base.repository.get_object_content(self.model_filename, mode='rb'))
        return {'model': path}

    def _cached_folder(self) -> pathlib.Path:
        folder = pathlib.Path(tempfile.gettempdir(), 'glassml-potentials', f'mlip-{self.uuid}')
        if self.has_model_file:
            path = folder / self.model_filename
            if not (path.is_file() and mlip.sha256_file(path) == self.base.attributes.get('sha256_model')):
                self.write_files(folder)
        return folder

    def get_calculator(self, device: str | None = None):
        """The ASE calculator, loaded from local files only (``device`` overrides the stored one); kept for reuse."""
        key = device or self.device
        cache = self.__dict__.setdefault('_calculators', {})
        if key not in cache and self.python_code is not None:
            try:
                mlip.import_object(self.calculator)
            except (ImportError, AttributeError, ValueError):
                raise MlipError(f'{self.calculator} loads in the python of code {self.python_code}, not in this '
                                'environment; run it through a job on that code (AseMDCalculation, '
                                'EvaluatePotentialCalculation).') from None  # fmt: skip
        if key not in cache:
            cache[key] = mlip.build_calculator(self.calculator_spec(), self._cached_folder(), device=device)
        return cache[key]

    def check_covers(self, symbols: t.Iterable[str]) -> None:
        mlip.check_covers(self.elements, symbols, name=f'the potential ({self.calculator})')


def job_code(potential, code=None):
    """The code a job running ``potential`` must use: the MLIP's own ``python_code`` when it names one (the only
    environment that loads it), else ``code``. Builders call this, so a MACE model runs on mace-python by itself."""
    label = getattr(potential, 'python_code', None) if isinstance(potential, MlipPotentialData) else None
    return _load_python_code(label) if label else code


def _load_python_code(label: str):
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida.orm import load_code

    try:
        return load_code(label)
    except (NotExistent, MultipleObjectsError) as exc:
        raise MlipError(f'python_code {label!r} is not one registered code ({type(exc).__name__}); register it '
                        '(`aiida-glassml setup` registers mace-python@localhost) or give its full label.') from None


def _python_of(label: str) -> str:
    """The local interpreter of the code ``label``, to check the model with before anything is stored."""
    import os

    from aiida.orm import InstalledCode

    code = _load_python_code(label)
    computer = code.computer
    if not isinstance(code, InstalledCode) or computer is None or computer.transport_type != 'core.local':
        raise MlipError(f'python_code {code.full_label} is not a python on this machine, so the model cannot be '
                        'checked here; give a code on a local computer (e.g. mace-python@localhost).')  # fmt: skip
    path = code.filepath_executable.as_posix()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise MlipError(f'the python {path} of code {code.full_label} does not exist; reinstall its environment '
                        '(e.g. `make install-mace`) and run `aiida-glassml setup`.')  # fmt: skip
    return path


def _check_symbols(elements: t.Sequence[str]) -> list[str]:
    from ase.data import chemical_symbols

    if isinstance(elements, str):
        elements = [elements]
    unknown = [e for e in elements if e not in chemical_symbols[1:]]
    if unknown:
        raise MlipError(f'elements {unknown} are not element symbols; give e.g. ["Na", "Fe", "P", "O"].')
    return list(dict.fromkeys(elements))

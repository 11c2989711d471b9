"""Pure helpers for machine-learned interatomic potentials run through their own ASE calculator (CHGNet, SevenNet, a
user's MACE or GRACE model...). No AiiDA imports: :class:`~aiida_glassml.data.mlip_potential.MlipPotentialData`, the
ASE MD runner and the evaluation all call these.

A calculator *spec* (``type: mlip``) says how to build the calculator where it runs::

    {'type': 'mlip', 'name': 'sevenn.calculator:SevenNetCalculator', 'kwargs': {...},
     'model': {'file': 'model.pth'} | {'package': 'sevenn', 'path': 'pretrained_potentials/...', 'sha256': ...} | None,
     'model_keyword': 'model' | None, 'device': 'cpu', 'device_keyword': 'device' | None, 'device_fallback': False,
     'package': 'sevenn', 'package_version': '0.13.0'}

Only local files are loaded: a model file next to the spec, or weights shipped inside the installed package (checked by
hash). Shipped weights are passed to the calculator as a path, so the package never goes looking for a download.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pathlib
import typing as t

import numpy as np


class MlipError(ValueError):
    """An MLIP that cannot be built or used as asked."""


#: universal models whose weights ship inside the package wheel (path relative to the package directory)
SHIPPED = {
    'chgnet': {
        'package': 'chgnet',
        'calculator': 'chgnet.model.dynamics:CHGNetCalculator',
        'model_keyword': None,  # CHGNetCalculator() loads the shipped 0.3.0 itself (chgnet never downloads)
        'device_keyword': 'use_device',
        'kwargs': {},
        'default': '0.3.0',
        'models': {
            '0.3.0': {
                'path': 'pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar',
                'provenance': {
                    'model': 'CHGNet 0.3.0', 'dataset': 'MPtrj (Materials Project relaxation trajectories)',
                    'level_of_theory': 'PBE / PBE+U (Materials Project)',
                    'reference': 'B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023)',
                },  # fmt: skip
            },
        },
    },
    'sevennet': {
        'package': 'sevenn',
        'calculator': 'sevenn.calculator:SevenNetCalculator',
        'model_keyword': 'model',
        'device_keyword': 'device',
        'kwargs': {},
        'default': '7net-0',
        'models': {
            '7net-0': {
                'path': 'pretrained_potentials/SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth',
                'provenance': {
                    'model': 'SevenNet-0 (11Jul2024)', 'dataset': 'MPtrj (Materials Project relaxation trajectories)',
                    'level_of_theory': 'PBE / PBE+U (Materials Project)',
                    'reference': 'Y. Park et al., J. Chem. Theory Comput. 20, 4857 (2024)',
                },  # fmt: skip
            },
            '7net-mf-0': {
                'path': 'pretrained_potentials/SevenNet_MF_0/checkpoint_sevennet_mf_0.pth',
                'modals': ('PBE', 'R2SCAN'),
                'provenance': {
                    'model': 'SevenNet-MF-0', 'dataset': 'MPtrj (PBE/PBE+U) and MP r2SCAN, multi-fidelity',
                    'level_of_theory': 'PBE / PBE+U or r2SCAN (the `modal` keyword)',
                    'reference': 'J. Kim et al., J. Am. Chem. Soc. 147, 1042 (2025)',
                },  # fmt: skip
            },
        },
    },
}


def sha256_file(path: str | pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def shipped_model(family: str, model: str | None = None) -> dict:
    """``{family, name, package, path, provenance, ...}`` of a shipped model; raises MlipError naming the choices."""
    if family not in SHIPPED:
        raise MlipError(f'no shipped model family {family!r}; choose one of {sorted(SHIPPED)}.')
    entry = SHIPPED[family]
    name = model or entry['default']
    if name not in entry['models']:
        raise MlipError(f'{family} ships no model {name!r} here; choose one of {sorted(entry["models"])} (or store '
                        'your own model file with MlipPotentialData(model_file=..., calculator=...)).')  # fmt: skip
    return {'family': family, 'name': name, **{k: v for k, v in entry.items() if k != 'models'},
            **entry['models'][name]}  # fmt: skip


def package_dir(package: str) -> pathlib.Path:
    import importlib.util

    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise MlipError(f'the package {package!r} is not installed here; `pip install aiida-glassml[mlip]` (or '
                        f'`pip install {package}`).')  # fmt: skip
    return pathlib.Path(list(found.submodule_search_locations)[0])


def locate_shipped(package: str, relative: str, sha256: str | None = None) -> pathlib.Path:
    """The installed path of weights shipped in ``package``; refuses (no download) when absent or different."""
    path = package_dir(package) / relative
    if not path.is_file():
        raise MlipError(f'the installed {package} ({distribution_version(package)}) has no shipped weights {relative}; '
                        f'reinstall the {package} wheel that ships them. Nothing is downloaded at run time.')  # fmt: skip
    if sha256 is not None and sha256_file(path) != sha256:
        raise MlipError(f'the weights {path} of the installed {package} ({distribution_version(package)}) differ from '
                        'the ones recorded in the potential (sha256); install the recorded package version.')  # fmt: skip
    return path


def distribution_name(module: str) -> str:
    """The distribution (pip name) that provides the top-level module of ``module`` (``sevenn.calculator:X``)."""
    from importlib.metadata import packages_distributions

    top = module.split(':')[0].split('.')[0]
    return (packages_distributions().get(top) or [top])[0]


def distribution_version(module: str) -> str | None:
    """Version of the distribution that provides ``module`` (None when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution_name(module))
    except PackageNotFoundError:
        return None


def import_object(name: str):
    """``module:attr.attr`` (e.g. ``chgnet.model.dynamics:CHGNetCalculator.from_file``) or ``module.Class``."""
    if ':' in name:
        module_name, _, path = name.partition(':')
    else:
        module_name, _, path = name.rpartition('.')
    obj = importlib.import_module(module_name)
    for attr in path.split('.'):
        obj = getattr(obj, attr)
    return obj


def device_keyword_of(factory) -> str | None:
    """The keyword that takes the torch device (``device`` for SevenNet and MACE, ``use_device`` for CHGNet)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    for keyword in ('device', 'use_device'):
        if keyword in parameters:
            return keyword
    return None


def resolve_device(device: str | None, fallback: bool = False, log: t.Callable[[str], None] | None = None) -> str:
    """The torch device to run on: ``cpu``, ``cuda[:N]``, ``mps`` or ``auto`` (a GPU when there is one). A device that
    is not present raises MlipError, or gives ``cpu`` when ``fallback`` is set."""
    if device in (None, 'cpu'):
        return 'cpu'
    import torch

    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' or device.startswith('cuda:'):
        suffix = device.partition(':')[2]
        if suffix and not suffix.isdigit():
            raise MlipError(f'device {device!r} is not a device; use cpu, cuda, cuda:N, mps or auto.')
        index = int(suffix or 0)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index < count:
            return device
        reason = ('this machine has no GPU that torch can use (torch.cuda.is_available() is False)' if not count
                  else f'this machine has {count} GPU(s)')  # fmt: skip
    elif device == 'mps':
        if torch.backends.mps.is_available():
            return device
        reason = 'this machine has no Apple GPU (torch.backends.mps.is_available() is False)'
    else:
        raise MlipError(f'device {device!r} is not a device; use cpu, cuda, cuda:N, mps or auto.')
    if fallback:
        if log is not None:
            log(f'device {device!r} requested but {reason}: falling back to cpu (device_fallback).')
        return 'cpu'
    raise MlipError(f'device {device!r} requested but {reason}; use device="cpu", or set device_fallback=True to fall '
                    'back to the CPU.')  # fmt: skip


def model_path_of(spec: t.Mapping, folder: str | pathlib.Path = '.') -> pathlib.Path | None:
    """The local file the calculator loads: the spec's model file in ``folder`` or the package's shipped weights."""
    model = spec.get('model') or {}
    if 'file' in model:
        path = pathlib.Path(folder) / model['file']
        if not path.is_file():
            raise MlipError(f'model file {path} is missing; the potential writes it next to the input.')
        return path
    if 'package' in model:
        return locate_shipped(model['package'], model['path'], model.get('sha256'))
    return None


def build_calculator(spec: t.Mapping, folder: str | pathlib.Path = '.', device: str | None = None,
                     log: t.Callable[[str], None] | None = None, model_label: str | None = None):  # fmt: skip
    """The ASE calculator of a ``type: mlip`` spec (``device`` overrides the spec's; ``model_label`` names the model
    file in errors, e.g. the user's own path)."""
    name = spec['name']
    try:
        factory = import_object(name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise MlipError(f'cannot import the calculator {name!r} ({type(exc).__name__}: {exc}); install its package or '
                        'give `module:Class` (e.g. `sevenn.calculator:SevenNetCalculator`).') from None  # fmt: skip
    path = model_path_of(spec, folder)
    kwargs = dict(spec.get('kwargs') or {})
    if spec.get('model_keyword') and path is not None:
        kwargs[spec['model_keyword']] = str(path)
    resolved = resolve_device(device or spec.get('device'), bool(spec.get('device_fallback')), log)
    if spec.get('device_keyword'):
        kwargs[spec['device_keyword']] = resolved
    elif resolved != 'cpu':
        raise MlipError(f'the calculator {name} takes no device keyword; run it on the cpu.')
    try:
        return factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - any loader failure is the same bad input: say which file and calculator
        what = f'model file {model_label or path.name}' if path is not None else 'the model'
        lines = str(exc).strip().splitlines()
        detail = f'{type(exc).__name__}: {lines[0]}' if lines else type(exc).__name__
        raise MlipError(f'{what} does not load with {name} ({detail}); give a model file made for this '
                        'calculator.') from None  # fmt: skip


#: marks the one line of :func:`probe_main` that :func:`load_in_python` reads
PROBE_MARK = 'GLASSML_MLIP_PROBE '


def probe(spec: t.Mapping, folder: str | pathlib.Path, model_label: str | None = None) -> dict:
    """Load the calculator of ``spec`` here on the CPU: ``{elements, package, package_version, device_keyword}``, or
    ``{error}`` (the MlipError's line)."""
    spec = dict(spec)
    try:
        if spec.get('device_keyword') is None:
            try:
                spec['device_keyword'] = device_keyword_of(import_object(spec['name']))
            except (ImportError, AttributeError, ValueError):
                pass  # build_calculator says it
        calculator = build_calculator(spec, folder, device='cpu', model_label=model_label)
    except MlipError as exc:
        return {'error': str(exc)}
    return {'elements': elements_of(calculator), 'package': distribution_name(spec['name']),
            'package_version': distribution_version(spec['name']),
            'device_keyword': spec.get('device_keyword')}  # fmt: skip


def probe_main() -> None:
    """``python -c 'from aiida_glassml.common.mlip import probe_main; probe_main()'`` with ``{spec, folder,
    model_label}`` as JSON on stdin: prints :func:`probe`'s answer on one marked line."""
    import json
    import sys

    request = json.loads(sys.stdin.read())
    print(PROBE_MARK + json.dumps(probe(request['spec'], request['folder'], request.get('model_label'))), flush=True)


def load_in_python(python: str, spec: t.Mapping, folder: str | pathlib.Path, model_label: str | None = None,
                   where: str | None = None, timeout: float = 600) -> dict:  # fmt: skip
    """:func:`probe` in another environment's interpreter ``python`` (a subprocess: nothing is imported here). Raises
    MlipError with the probe's line, or naming what is missing in that environment."""
    import json
    import os
    import subprocess

    where = where or python
    request = json.dumps({'spec': dict(spec), 'folder': str(folder), 'model_label': model_label})
    command = [python, '-c', 'from aiida_glassml.common.mlip import probe_main; probe_main()']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    try:
        proc = subprocess.run(command, input=request, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MlipError(f'could not run the python of {where} ({python}): {exc}.') from None
    lines = [line[len(PROBE_MARK):] for line in proc.stdout.splitlines() if line.startswith(PROBE_MARK)]
    if not lines:
        if 'aiida_glassml' in proc.stderr and 'ModuleNotFoundError' in proc.stderr:
            raise MlipError(f'the python of {where} ({python}) cannot import aiida_glassml; install it there with '
                            '`pip install --no-deps -e .` (make install-mace does).')  # fmt: skip
        tail = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        raise MlipError(f'the python of {where} ({python}) could not check the model: {tail}')
    answer = json.loads(lines[-1])
    if 'error' in answer:
        raise MlipError(answer['error'])
    return answer


def shipped_calculator(family: str, model: str | None = None, device: str = 'cpu', device_fallback: bool = False,
                       sha256: str | None = None, **kwargs):  # fmt: skip
    """The ASE calculator of a shipped universal model, from the installed weights only (checked by ``sha256`` when
    given): the ``calculator`` form of ``{mlip: chgnet}`` in a study recipe."""
    entry = shipped_model(family, model)
    check_modal(entry, kwargs.get('modal'))
    spec = {'type': 'mlip', 'name': entry['calculator'], 'kwargs': {**entry['kwargs'], **kwargs},
            'model': {'package': entry['package'], 'path': entry['path'], 'sha256': sha256},
            'model_keyword': entry['model_keyword'], 'device': device, 'device_keyword': entry['device_keyword'],
            'device_fallback': device_fallback}  # fmt: skip
    return build_calculator(spec, log=lambda msg: print(msg, flush=True))


def check_modal(entry: dict, modal: str | None) -> None:
    """A multi-fidelity model (SevenNet-MF-0) needs its ``modal``; a single-fidelity one takes none."""
    if 'modals' in entry and modal not in entry['modals']:
        raise MlipError(f'{entry["name"]} is multi-fidelity; give modal= one of {list(entry["modals"])}.')
    if 'modals' not in entry and modal is not None:
        raise MlipError(f'{entry["name"]} has a single fidelity; leave `modal` out.')


def elements_of(calculator) -> list[str] | None:
    """The elements a loaded model has parameters for, when its calculator says (SevenNet, CHGNet, MACE)."""
    from ase.data import chemical_symbols

    numbers = None
    type_map = getattr(calculator, 'type_map', None)  # SevenNet: {Z: index}
    if isinstance(type_map, dict) and type_map:
        numbers = list(type_map)
    z_table = getattr(calculator, 'z_table', None)  # MACE
    if numbers is None and z_table is not None and getattr(z_table, 'zs', None) is not None:
        numbers = list(z_table.zs)
    embedding = getattr(getattr(getattr(calculator, 'model', None), 'atom_embedding', None), 'embedding', None)
    if numbers is None and embedding is not None:  # CHGNet: one embedding row per Z = 1..n
        numbers = list(range(1, int(embedding.num_embeddings) + 1))
    if numbers is None:
        return None
    return sorted({chemical_symbols[int(z)] for z in numbers if 0 < int(z) < len(chemical_symbols)},
                  key=chemical_symbols.index)  # fmt: skip


def check_covers(elements: t.Sequence[str], symbols: t.Iterable[str], name: str = 'the potential') -> None:
    missing = sorted(set(symbols) - set(elements))
    if missing:
        raise MlipError(f'{name} has no parameters for {missing}; choose a model trained on every element of the '
                        'structure.')  # fmt: skip


def predict(calculator, atoms_list: t.Iterable) -> dict[str, np.ndarray]:
    """Energies (F,) and forces (N, 3) of frames, from the calculator as it is."""
    energies, forces = [], []
    for atoms in atoms_list:
        atoms = atoms.copy()
        atoms.calc = calculator
        energies.append(float(atoms.get_potential_energy()))
        forces.append(np.asarray(atoms.get_forces(), dtype=float))
    forces = np.concatenate(forces).reshape(-1, 3) if forces else np.zeros((0, 3))
    return {'energy': np.array(energies), 'forces': forces}


def evaluate(calculator, frameset, reference_energy: t.Mapping[str, float] | None = None,
             elements: t.Sequence[str] | None = None) -> tuple[dict, dict[str, np.ndarray]]:  # fmt: skip
    """Metrics and per-frame errors of a calculator on a :class:`~aiida_glassml.common.frames.FrameSet`, as
    :func:`aiida_glassml.fitting.evaluate.evaluate` does for ACE. Reference energies: ``reference_energy`` when
    given, else none (an MLIP predicts total energies in its training set's convention)."""
    from aiida_glassml.fitting.metrics import compute_metrics

    if elements is not None:
        check_covers(elements, frameset.elements)
    prediction = predict(calculator, frameset.to_atoms())
    metrics, errors = compute_metrics(frameset, prediction['energy'], prediction['forces'], reference_energy)
    metrics['reference_energy'] = dict(reference_energy) if reference_energy else None
    metrics['reference_energy_source'] = 'argument' if reference_energy else 'none'
    errors['forces_predicted'] = prediction['forces']
    return metrics, errors


__all__ = ['SHIPPED', 'MlipError', 'build_calculator', 'check_covers', 'check_modal', 'device_keyword_of',
           'distribution_name', 'distribution_version', 'elements_of', 'evaluate', 'import_object', 'load_in_python',
           'locate_shipped', 'model_path_of', 'predict', 'probe', 'probe_main', 'resolve_device', 'sha256_file',
           'shipped_calculator', 'shipped_model']

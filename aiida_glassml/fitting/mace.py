"""MACE training and fine-tuning with ``mace_run_train`` (mace-torch): validated settings, the command line, the job's
evaluation step and the metrics. No AiiDA imports; :class:`~aiida_glassml.calculations.mace_train.MaceTrainCalculation`
wraps them.

The job writes the train and test frames as extended XYZ (total DFT energies in eV, forces in eV/Å, under MACE's
``REF_energy``/``REF_forces`` keys), runs
``mace_run_train`` (the validation frames are ``valid_fraction`` of the train frames, drawn by MACE with ``seed``), then
evaluates the trained model on the train and test frames with ``MACECalculator`` in the same environment
(:func:`evaluate_main`), so the metrics are those of :mod:`aiida_glassml.fitting.metrics`, as for an ACE fit.
"""

from __future__ import annotations

import copy
import json
import pathlib
import typing as t

import numpy as np

from aiida_glassml.fitting.settings import FitSettingsError, check_test_fraction

CALCULATOR = 'mace.calculators:MACECalculator'
MODEL_KEYWORD = 'model_paths'
NAME = 'mace'
FILES = {
    'train': 'train.xyz',
    'test': 'test.xyz',
    'foundation': 'foundation.model',
    'model': f'{NAME}.model',
    'train_stdout': 'mace_train.out',
    'train_stderr': 'mace_train.err',
    'evaluate_script': 'evaluate_mace.py',
    'evaluate_stdout': 'evaluate.out',
    'predictions': 'predictions.npz',
    'evaluation': 'evaluation.json',
}
#: MACE's checkpoint folder (its default), copied from a stopped run's remote folder to resume it
CHECKPOINTS = 'checkpoints'
MODELS = ('MACE', 'ScaleShiftMACE')
DTYPES = ('float64', 'float32')

DEFAULT_SETTINGS: dict[str, t.Any] = {
    # architecture (a fine-tune keeps the foundation model's; these are then not passed)
    'model': 'MACE',
    'num_channels': 64,
    'max_L': 1,
    'r_max': 5.0,
    'num_interactions': 2,
    'correlation': 3,
    'num_radial_basis': 8,
    # data and loss
    'E0s': 'average',  # least-squares per-element energies of the train frames; or {"Na": -1.2, ...}; or foundation
    'energy_weight': 1.0,
    'forces_weight': 100.0,
    'valid_fraction': 0.1,
    'test_fraction': 0.1,  # the FitAceWorkChain split (aiida_glassml.fitting.split), when no test set is given
    'seed': 42,
    # optimisation
    'max_num_epochs': 200,
    'patience': 50,
    'batch_size': 5,
    'valid_batch_size': 5,
    'lr': 0.01,
    'ema': True,
    'ema_decay': 0.99,
    'default_dtype': 'float64',
    'device': 'cpu',
    'eval_interval': 1,
}
ARCHITECTURE = ('model', 'num_channels', 'max_L', 'r_max', 'num_interactions', 'correlation', 'num_radial_basis')
_POSITIVE_INT = ('num_channels', 'num_interactions', 'correlation', 'num_radial_basis', 'max_num_epochs', 'patience',
                 'batch_size', 'valid_batch_size', 'eval_interval')  # fmt: skip
_POSITIVE_FLOAT = ('r_max', 'lr', 'forces_weight')


def validate_settings(settings: t.Mapping | None) -> dict:
    """The defaults updated with ``settings``; an unknown key or a bad value raises FitSettingsError naming it."""
    merged = copy.deepcopy(DEFAULT_SETTINGS)
    unknown = sorted(set(settings or {}) - set(DEFAULT_SETTINGS))
    if unknown:
        raise FitSettingsError(f'unknown MACE setting(s) {unknown}; the settings are {sorted(DEFAULT_SETTINGS)} '
                               '(docs/mlip.md).')  # fmt: skip
    merged.update(settings or {})
    for key in _POSITIVE_INT:
        if isinstance(merged[key], bool) or not isinstance(merged[key], int) or merged[key] < 1:
            raise FitSettingsError(f'MACE setting `{key}` must be a positive integer, got {merged[key]!r}.')
    for key in _POSITIVE_FLOAT:
        if isinstance(merged[key], bool) or not isinstance(merged[key], (int, float)) or merged[key] <= 0:
            raise FitSettingsError(f'MACE setting `{key}` must be a positive number, got {merged[key]!r}.')
    if merged['max_L'] not in (0, 1, 2, 3):
        raise FitSettingsError(f'MACE setting `max_L` must be 0, 1, 2 or 3, got {merged["max_L"]!r}.')
    if merged['model'] not in MODELS:
        raise FitSettingsError(f'MACE setting `model` must be one of {list(MODELS)}, got {merged["model"]!r}.')
    if merged['default_dtype'] not in DTYPES:
        raise FitSettingsError(f'MACE setting `default_dtype` must be one of {list(DTYPES)}, got '
                               f'{merged["default_dtype"]!r}.')  # fmt: skip
    e0s = merged['E0s']
    if not (e0s in ('average', 'foundation') or isinstance(e0s, dict)):
        raise FitSettingsError(f'MACE setting `E0s` must be "average", "foundation" or {{element: energy in eV}}, '
                               f'got {e0s!r}.')  # fmt: skip
    if not 0.0 < float(merged['valid_fraction']) < 1.0:
        raise FitSettingsError(f'MACE setting `valid_fraction` must be strictly between 0 and 1 (the share of the '
                               f'train frames MACE validates on), got {merged["valid_fraction"]!r}.')  # fmt: skip
    if merged['test_fraction'] is not None:
        check_test_fraction(merged['test_fraction'])
    return merged


def check_data(settings: dict, train_elements: t.Iterable[str], n_train: int, test_elements=(),
               foundation_elements: t.Sequence[str] | None = None) -> None:  # fmt: skip
    """The data fit the settings: enough train frames for a validation split; E0s and a foundation model cover the
    elements; the test frames hold no element the train frames lack."""
    train_elements = sorted(set(train_elements))
    n_valid = int(round(n_train * float(settings['valid_fraction'])))
    if n_train < 2 or n_valid < 1 or n_valid >= n_train:
        raise FitSettingsError(f'{n_train} train frame(s) cannot give MACE a validation split of valid_fraction '
                               f'{settings["valid_fraction"]}; give more frames or a larger valid_fraction.')
    extra = sorted(set(test_elements) - set(train_elements))
    if extra:
        raise FitSettingsError(f'the test set contains {extra}, which the training set lacks; the model cannot predict '
                               'them. Use a test set with the elements of the training set.')  # fmt: skip
    e0s = settings['E0s']
    if isinstance(e0s, dict):
        missing = sorted(set(train_elements) - set(e0s))
        if missing:
            raise FitSettingsError(f'MACE setting `E0s` lacks {missing}; give an energy for every element of the data, '
                                   'or "average".')  # fmt: skip
    if e0s == 'foundation' and foundation_elements is None:
        raise FitSettingsError('MACE setting `E0s: foundation` needs a `foundation_model`; use "average" to fit '
                               'from scratch.')  # fmt: skip
    if foundation_elements is not None:
        missing = sorted(set(train_elements) - set(foundation_elements))
        if missing:
            raise FitSettingsError(f'the foundation model has no parameters for {missing}; fine-tune a model trained '
                                   'on every element of the data.')  # fmt: skip


def train_cmdline(settings: dict, fine_tune: bool = False, has_test: bool = True, restart: bool = False) -> list[str]:
    """Arguments of ``mace_run_train``. A fine-tune starts from ``foundation.model`` (naive fine-tuning: all weights
    trained on the new data; MACE takes the architecture from the model). ``restart``: resume from the latest
    checkpoint in ``checkpoints/`` (MACE saves one whenever the validation loss improves)."""
    s = settings
    args = [f'--name={NAME}', f'--train_file={FILES["train"]}', f'--valid_fraction={s["valid_fraction"]}',
            f'--energy_key={ENERGY_KEY}', f'--forces_key={FORCES_KEY}', f'--seed={s["seed"]}',
            f'--E0s={json.dumps(s["E0s"]) if isinstance(s["E0s"], dict) else s["E0s"]}',
            f'--energy_weight={s["energy_weight"]}', f'--forces_weight={s["forces_weight"]}',
            f'--max_num_epochs={s["max_num_epochs"]}', f'--patience={s["patience"]}',
            f'--batch_size={s["batch_size"]}', f'--valid_batch_size={s["valid_batch_size"]}', f'--lr={s["lr"]}',
            f'--default_dtype={s["default_dtype"]}', f'--device={s["device"]}',
            f'--eval_interval={s["eval_interval"]}', '--save_cpu']  # fmt: skip
    if has_test:
        args.append(f'--test_file={FILES["test"]}')
    if s['ema']:
        args += ['--ema', f'--ema_decay={s["ema_decay"]}']
    if restart:
        args += [f'--checkpoints_dir={CHECKPOINTS}', '--restart_latest']
    if fine_tune:
        args += [f'--foundation_model={FILES["foundation"]}', '--multiheads_finetuning=False']
    else:
        args += [f'--model={s["model"]}', f'--num_channels={s["num_channels"]}', f'--max_L={s["max_L"]}',
                 f'--r_max={s["r_max"]}', f'--num_interactions={s["num_interactions"]}',
                 f'--correlation={s["correlation"]}', f'--num_radial_basis={s["num_radial_basis"]}']  # fmt: skip
    return args


#: label keys of the job's extended XYZ: ASE (>= 3.23) takes plain `energy`/`forces` for its own calculator results
ENERGY_KEY, FORCES_KEY = 'REF_energy', 'REF_forces'


def write_frames(frameset, path: str | pathlib.Path) -> None:
    """Extended XYZ of the frames with their DFT labels under ``REF_energy``/``REF_forces`` (as MACE asks)."""
    frameset.write_extxyz(path)
    text = pathlib.Path(path).read_text(encoding='utf-8').splitlines(keepends=True)
    for index in range(1, len(text)):
        if text[index - 1].strip().isdigit() and text[index].startswith('Lattice='):
            text[index] = text[index].replace(':forces:R:3', f':{FORCES_KEY}:R:3', 1).replace(
                ' energy=', f' {ENERGY_KEY}=', 1)
    pathlib.Path(path).write_text(''.join(text), encoding='utf-8')


def calculator_kwargs(settings: dict) -> dict:
    return {'default_dtype': settings['default_dtype']}


# ---------------------------------------------------------------- the job's evaluation step (runs in the MACE venv)
def evaluate_script() -> str:
    return 'from aiida_glassml.fitting.mace import evaluate_main\n\nevaluate_main()\n'


def evaluate_main(folder: str | pathlib.Path = '.') -> None:
    """Load the trained model with MACECalculator (through :func:`aiida_glassml.common.mlip.build_calculator`, as the
    potential node will), predict the train and test frames, write ``predictions.npz`` and ``evaluation.json``
    (elements, versions, epochs)."""
    from ase.io import read

    from aiida_glassml.common import mlip

    folder = pathlib.Path(folder)
    settings = json.loads((folder / 'settings.json').read_text())
    spec = {'type': 'mlip', 'name': CALCULATOR, 'kwargs': calculator_kwargs(settings),
            'model': {'file': FILES['model']}, 'model_keyword': MODEL_KEYWORD, 'device': 'cpu',
            'device_keyword': 'device'}  # fmt: skip
    calculator = mlip.build_calculator(spec, folder)
    arrays = {}
    for part in ('train', 'test'):
        path = folder / FILES[part]
        if not path.is_file():
            continue
        prediction = mlip.predict(calculator, read(path, index=':', format='extxyz'))
        arrays[f'{part}_energy'], arrays[f'{part}_forces'] = prediction['energy'], prediction['forces']
    np.savez(folder / FILES['predictions'], **arrays)
    model = calculator.models[0]
    info = {
        'elements': mlip.elements_of(calculator),
        'package_version': mlip.distribution_version(CALCULATOR),
        'torch_version': mlip.distribution_version('torch'),
        'n_parameters': int(sum(p.numel() for p in model.parameters())),
        'r_max': float(calculator.r_max),
        'n_epochs': count_epochs(folder / 'results'),
    }
    (folder / FILES['evaluation']).write_text(json.dumps(info, indent=1))


def count_epochs(results: pathlib.Path) -> int | None:
    """Epochs trained: the highest ``epoch`` + 1 of the ``mode: opt`` lines in MACE's ``results/*_train.txt``."""
    epochs = []
    for path in sorted(pathlib.Path(results).glob('*_train.txt')):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get('mode') == 'opt' and row.get('epoch') is not None:
                epochs.append(int(row['epoch']))
    return max(epochs) + 1 if epochs else None


def metrics_from_predictions(frameset, energy: np.ndarray, forces: np.ndarray) -> dict:
    """Metrics of :mod:`aiida_glassml.fitting.metrics` (meV/atom, meV/Å) of predicted total energies and forces
    against the frames' DFT labels (MACE predicts total energies, E0s included: no reference energies)."""
    from aiida_glassml.fitting.metrics import compute_metrics

    metrics, _ = compute_metrics(frameset, energy, forces, None)
    return metrics


def training_tail(text: str, lines: int = 5) -> str:
    """The last lines of a MACE log that say what went wrong (tracebacks end with the error)."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip() and 'Warning' not in line]
    return ' | '.join(kept[-lines:]) or '(no output)'

"""The potential-evaluation job as plain functions (no AiiDA imports): what ``EvaluatePotentialCalculation`` runs.

The job folder holds ``evaluate_input.json`` (the calculator, reference energies, parity), the dataset as the
``frames.npz``/``frames.json`` of its TrainingSetData (``dataset_*``; with a training set for the parity plots also
``training_set_*``) and the potential file (an ACE ``potential.yaml`` or an MLIP's model file), all copied from the
repository. :func:`main` writes ``metrics.json``, ``frame_errors.npz`` and, with parity, ``energy_parity.png`` and
``force_parity.png``. Any failure is written as ``{'error': message}`` to ``metrics.json`` for the parser.
"""

from __future__ import annotations

import json
import pathlib
import sys
import typing as t

import numpy as np

FILES = {
    'input': 'evaluate_input.json', 'script': 'run_evaluation.py', 'stdout': 'evaluation.out',
    'metrics': 'metrics.json', 'frame_errors': 'frame_errors.npz',
    'energy_parity': 'energy_parity.png', 'force_parity': 'force_parity.png',
}  # fmt: skip
#: the frames of a TrainingSetData in the job folder: ``{prefix}_frames.npz`` and ``{prefix}_frames.json``
FRAME_FILES = {'npz': '{prefix}_frames.npz', 'json': '{prefix}_frames.json'}
FILE_PREFIXES = ('dataset', 'training_set')
#: the per-frame errors the job stores (the ArrayData ``frame_errors``)
ERROR_ARRAYS = ('n_atoms', 'energy_reference', 'energy_predicted', 'energy_error_per_atom', 'force_mae', 'force_rmse')
ERROR_UNITS = {'energy_reference': 'eV', 'energy_predicted': 'eV', 'energy_error_per_atom': 'meV/atom',
               'force_mae': 'meV/Å', 'force_rmse': 'meV/Å'}  # fmt: skip
METRIC_UNITS = {'energy': 'meV/atom', 'force': 'meV/Å', 'energy_offsets': 'eV/atom'}
RUN_SCRIPT = 'from aiida_glassml.fitting.evaluate_job import main\n\nraise SystemExit(main())\n'


def read_frames(folder: str | pathlib.Path, prefix: str):
    from aiida_glassml.common.frames import FrameSet

    folder = pathlib.Path(folder)
    with open(folder / FRAME_FILES['npz'].format(prefix=prefix), 'rb') as handle:
        return FrameSet.from_npz(handle, (folder / FRAME_FILES['json'].format(prefix=prefix)).read_text())


def evaluate_frames(calculator: dict, folder: str | pathlib.Path, frameset, reference_energies: dict | None):
    """Metrics and per-frame errors (with predicted forces) of the potential ``calculator`` describes:
    ``{'type': 'ace', 'yaml': name}`` (pyace; reference energies default to the potential's metadata) or an MLIP's
    ``type: mlip`` spec (its own ASE calculator, model file in ``folder``; no default reference energies)."""
    folder = pathlib.Path(folder)
    if calculator['type'] == 'ace':
        from aiida_glassml.fitting.evaluate import evaluate

        return evaluate(folder / calculator['yaml'], frameset, reference_energy=reference_energies)
    from aiida_glassml.common import mlip

    model = mlip.build_calculator(calculator, folder, log=lambda msg: print(msg, flush=True))
    return mlip.evaluate(model, frameset, reference_energies, calculator.get('elements'))


def parity_figures(series: dict, maes: dict) -> dict[str, bytes]:
    """The energy and force parity PNGs: ``series`` maps a label (train/test/data) to ``(frameset, errors)``."""
    from aiida_glassml.fitting.parity import parity_png

    energy = {label: (errors['energy_reference'] / errors['n_atoms'], errors['energy_predicted'] / errors['n_atoms'])
              for label, (_, errors) in series.items()}  # fmt: skip
    force = {label: (frames.forces.ravel(), errors['forces_predicted'].ravel())
             for label, (frames, errors) in series.items()}  # fmt: skip
    return {
        'energy_parity': parity_png(energy, quantity='energy', unit='eV/atom',
                                    mae={k: v['energy_mae'] for k, v in maes.items()}, mae_unit='meV/atom'),
        'force_parity': parity_png(force, quantity='force component', unit='eV/Å',
                                   mae={k: v['force_mae'] for k, v in maes.items()}, mae_unit='meV/Å'),
    }  # fmt: skip


def run(spec: dict, folder: str | pathlib.Path) -> tuple[dict, dict[str, np.ndarray], dict[str, bytes]]:
    """Metrics, per-frame errors and (``spec['parity']``) parity PNGs of the evaluation in ``folder``."""
    reference = spec.get('reference_energies')
    frames = read_frames(folder, 'dataset')
    metrics, errors = evaluate_frames(spec['calculator'], folder, frames, reference)
    metrics['units'] = dict(METRIC_UNITS)
    figures = {}
    if spec.get('parity'):
        label = 'test' if spec.get('training_set') else 'data'
        series, maes = {label: (frames, errors)}, {label: metrics}
        if spec.get('training_set'):
            train = read_frames(folder, 'training_set')
            train_metrics, train_errors = evaluate_frames(spec['calculator'], folder, train, reference)
            series, maes = {'train': (train, train_errors), **series}, {'train': train_metrics, **maes}
        figures = parity_figures(series, maes)
    return metrics, {key: np.asarray(errors[key]) for key in ERROR_ARRAYS}, figures


def main(argv: t.Sequence[str] | None = None) -> int:
    """Run the evaluation of ``evaluate_input.json`` (in the current folder unless a path is given)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    path = pathlib.Path(argv[0] if argv else FILES['input'])
    folder = path.parent
    try:
        metrics, errors, figures = run(json.loads(path.read_text()), folder)
    except Exception as exc:  # noqa: BLE001 - every failure goes to the parser as one line
        (folder / FILES['metrics']).write_text(json.dumps({'error': f'{type(exc).__name__}: {exc}'}))
        return 1
    np.savez(folder / FILES['frame_errors'], **errors)
    for name, content in figures.items():
        (folder / FILES[name]).write_bytes(content)
    (folder / FILES['metrics']).write_text(json.dumps(metrics, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

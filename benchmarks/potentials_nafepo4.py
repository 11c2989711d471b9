"""Potentials on the published NaFePO4 DFT test set: the published ACE, CHGNet 0.3.0, SevenNet-0 and an ACE fine-tuned
here, energy/force errors (raw and after a per-element energy offset) and MD cost per atom-step.

    .venv/bin/python benchmarks/potentials_nafepo4.py [--frames N] [--finetune-frames 100] [--maxiter 10]
                                                     [--md-steps 20] [--no-finetune] [--only WORD ...]
                                                     [--output table.md]

The test set (tests/data/test_data.pckl.gzip, 436 VASP PBE+U frames) is split in two halves (seeded). The fine-tuned
ACE is a pacemaker up-fit (``upfit: continue``, tensorpot L-BFGS-B in .venv-tf, the study's reference energies, the
published core repulsion kept) of the published potential on ``--finetune-frames`` frames of half A; every potential
is evaluated on half B (or its first ``--frames`` frames), so the fine-tuned one never sees its test frames. Errors
come from :func:`aiida_glassml.fitting.evaluate.evaluate` (ACE, pyace) and :func:`aiida_glassml.common.mlip.evaluate`
(the MLIPs' own ASE calculators), raw and after a fitted per-element energy offset
(:mod:`aiida_glassml.fitting.metrics`). MD cost: NVT at 1500 K of a random 112-atom NaFePO4 cell through
:func:`aiida_glassml.md.ase_runner.run_protocol` (what AseMDCalculation runs), the loop time only, one thread
(OMP_NUM_THREADS=1, torch.set_num_threads(1)). ``--only`` runs some rows (e.g. ``--only fine-tuned``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'benchmarks'))

import numpy as np  # noqa: E402

from aiida_glassml.common import benchmark  # noqa: E402
from aiida_glassml.common.frames import FrameSet  # noqa: E402

POTENTIAL = ROOT / 'tests' / 'data' / 'output_potential.yaml'
TEST_SET = ROOT / 'tests' / 'data' / 'test_data.pckl.gzip'
SEED = 16


def halves(frames: FrameSet) -> tuple[FrameSet, FrameSet]:
    order = np.random.default_rng(SEED).permutation(frames.n_frames)
    half = frames.n_frames // 2
    return frames.select(np.sort(order[:half]).tolist()), frames.select(np.sort(order[half:]).tolist())


def evaluate_ace(yaml_path, frames: FrameSet) -> dict:
    from aiida_glassml.fitting.evaluate import evaluate

    return evaluate(yaml_path, frames)[0]


def evaluate_mlip(calculator, frames: FrameSet) -> dict:
    from aiida_glassml.common import mlip

    return mlip.evaluate(calculator, frames)[0]


def finetune(train: FrameSet, maxiter: int, folder: pathlib.Path, tf_venv: pathlib.Path) -> tuple[pathlib.Path, dict]:
    """pacemaker up-fit of the published potential on ``train`` (tensorpot, L-BFGS-B); returns the output yaml."""
    import yaml

    from aiida_glassml.calculations.pacemaker import write_portable_pickle
    from aiida_glassml.fitting import input_yaml
    from aiida_glassml.fitting.settings import NAFEPO4_REFERENCE_ENERGY, validate_settings

    pacemaker = tf_venv / 'bin' / 'pacemaker'
    if not os.access(pacemaker, os.X_OK):
        raise RuntimeError(f'no {pacemaker}: make the TensorFlow venv first (`make install-tf`)')
    # repulsion None: the published ZBL core (inner cutoffs from its whole training set) stays part of the model; with
    # `auto` pacemaker would put a new core at the shortest bonds of these few frames, and the test half's closer
    # contacts would fall inside it
    settings = validate_settings({'maxiter': maxiter, 'ladder_step': None, 'evaluator': 'tensorpot',
                                  'optimizer': 'L-BFGS-B', 'display_step': 1, 'upfit': 'continue', 'repulsion': None,
                                  'reference_energy': NAFEPO4_REFERENCE_ENERGY})  # fmt: skip
    write_portable_pickle(train, str(folder / input_yaml.TRAIN_FILENAME))
    (folder / input_yaml.INITIAL_POTENTIAL_FILENAME).write_text(
        input_yaml.initial_potential_yaml(POTENTIAL.read_text(), settings))
    data = input_yaml.pacemaker_input(settings, train.elements, test_filename=None,
                                      initial_potential=input_yaml.INITIAL_POTENTIAL_FILENAME)  # fmt: skip
    (folder / 'input.yaml').write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'TF_CPP_MIN_LOG_LEVEL': '3'}
    start = time.perf_counter()
    proc = subprocess.run([str(pacemaker), 'input.yaml'], cwd=folder, capture_output=True, text=True, env=env,
                          check=False)  # fmt: skip
    wall = time.perf_counter() - start
    output = folder / input_yaml.OUTPUT_POTENTIAL_FILENAME
    if proc.returncode != 0 or not output.is_file():
        raise RuntimeError(f'pacemaker failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-600:]}')
    return output, {'fit_wall_s': wall, 'train_frames': train.n_frames, 'train_atoms': int(train.n_atoms.sum()),
                    'maxiter': maxiter}  # fmt: skip


def md_cost(calculator, n_atoms: int, steps: int, folder: pathlib.Path) -> float:
    """µs per atom-step of NVT at 1500 K (loop time, after one warm-up force call)."""
    from ase import Atoms

    from aiida_glassml.md import protocol as md
    from aiida_glassml.md.ase_runner import run_protocol
    from md import nafepo4  # benchmarks/md.py: the cells of the other MD benchmarks

    symbols, cell, positions = nafepo4(n_atoms)
    atoms = Atoms(symbols, positions=positions, cell=cell, pbc=True)
    atoms.calc = calculator
    atoms.get_forces()  # model loading and first-call set-up are not MD cost
    protocol = md.MDProtocol([md.NVT(1500.0, steps * 0.001)], dump_interval=0, thermo_interval=steps,
                             initial_temperature=1500.0)  # fmt: skip
    summary = run_protocol(atoms, calculator, protocol, folder, log=None)
    return 1e6 * summary['wall_time_s'] / (len(atoms) * steps)


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ('python-ace', 'chgnet', 'sevenn', 'torch', 'ase'):
        try:
            found.append(f'{package} {version(package)}')
        except PackageNotFoundError:
            found.append(f'{package} (not installed)')
    return ', '.join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=None, help='evaluate on the first N frames of half B')
    parser.add_argument('--finetune-frames', type=int, default=100, help='frames of half A to fine-tune on')
    parser.add_argument('--maxiter', type=int, default=10, help='pacemaker iterations of the fine-tune')
    parser.add_argument('--md-atoms', type=int, default=112)
    parser.add_argument('--md-steps', type=int, default=20)
    parser.add_argument('--no-finetune', action='store_true')
    parser.add_argument('--tf-venv', default=str(ROOT / '.venv-tf'))
    parser.add_argument('--only', nargs='+', help='only the potentials whose label contains one of these words')
    parser.add_argument('--output', help='also write the Markdown table to this file')
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from pyace import PyACECalculator

    from aiida_glassml.common import mlip

    frames = FrameSet.read_pacemaker_pickle(TEST_SET)
    train, test = halves(frames)
    if args.frames:
        test = test.select(list(range(min(args.frames, test.n_frames))))
    train = train.select(list(range(min(args.finetune_frames, train.n_frames))))
    print(f'evaluation: {test.n_frames} frames ({int(test.n_atoms.sum())} atoms) of half B', flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        candidates = [('ACE (published)', 'ace', lambda: POTENTIAL, None),
                      ('CHGNet 0.3.0', 'mlip', None, lambda: mlip.shipped_calculator('chgnet')),
                      ('SevenNet-0', 'mlip', None, lambda: mlip.shipped_calculator('sevennet', '7net-0'))]  # fmt: skip
        fit_note = None
        if not args.no_finetune:
            def tuned():
                path, info = finetune(train, args.maxiter, folder / 'finetune', pathlib.Path(args.tf_venv))
                nonlocal fit_note
                fit_note = (f'up-fit of the published ACE on {info["train_frames"]} frames ({info["train_atoms"]} '
                            f'atoms) of half A, {info["maxiter"]} L-BFGS-B iterations, {info["fit_wall_s"]:.0f} s')
                return path
            (folder / 'finetune').mkdir()
            candidates.append(('ACE (fine-tuned here)', 'ace', tuned, None))
        if args.only:
            candidates = [c for c in candidates if any(word in c[0] for word in args.only)]
        for label, kind, yaml_path, calculator in candidates:
            start = time.perf_counter()
            try:
                if kind == 'ace':
                    path = yaml_path()
                    metrics = evaluate_ace(path, test)
                    calc = PyACECalculator(basis_set=str(path))
                else:
                    calc = calculator()
                    metrics = evaluate_mlip(calc, test)
                cost = md_cost(calc, args.md_atoms, args.md_steps, folder / f'md-{len(rows)}')
                note = fit_note if label.startswith('ACE (fine') else None
                rows.append(benchmark.metric_row(label, kind, metrics, note, us_per_atom_step=cost))
            except Exception as exc:  # noqa: BLE001 - one potential failing still leaves the others' rows
                rows.append(benchmark.metric_row(label, kind, note=f'not evaluated: {type(exc).__name__}: {exc}'))
            print(f'{label}: {time.perf_counter() - start:.0f} s', flush=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    notes = [f'{stamp}; {platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()}), '
             f'one thread, load average {os.getloadavg()[0]:.1f} at the end; {versions()}.',
             f'Evaluated on {test.n_frames} frames ({int(test.n_atoms.sum())} atoms) of the published test set '
             f'(half B, seed {SEED}). MD: {args.md_steps} NVT steps of a {args.md_atoms}-atom cell.']  # fmt: skip
    table = benchmark.format_metrics_table(rows, title='Potentials on the published NaFePO4 test set', notes=notes)
    print(table)
    if args.output:
        pathlib.Path(args.output).write_text(table)


if __name__ == '__main__':
    main()

"""Benchmark: pacemaker fit wall time against dataset size on this machine.

Frames are drawn (seeded) from the published NaFePO4 test set (tests/data/test_data.pckl.gzip); the settings are the
`fast` protocol of FitAceWorkChain with `maxiter` iterations. Each size runs the same three commands as
PacemakerCalculation (pacemaker, pace_yaml2yace, pace_activeset) in a scratch folder, and then our evaluation of the
result (aiida_glassml.fitting.evaluate, pyace) beside pacemaker's own prediction time, on the same frames.

    .venv/bin/python benchmarks/fit.py [--sizes 10 20 40] [--maxiter 5]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiida_glassml.common.frames import FrameSet  # noqa: E402
from aiida_glassml.fitting import input_yaml  # noqa: E402
from aiida_glassml.fitting.evaluate import evaluate  # noqa: E402
from aiida_glassml.fitting.settings import validate_settings  # noqa: E402
from aiida_glassml.fitting.split import split_frameset  # noqa: E402
from aiida_glassml.protocols import load_protocol_file  # noqa: E402

BIN = pathlib.Path(sys.executable).parent


def run(command: list[str], cwd: pathlib.Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f'{command[0]} failed: {proc.stderr[-800:]}')
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[10, 20, 40])
    parser.add_argument('--maxiter', type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MPLBACKEND', 'Agg')

    frames = FrameSet.read_pacemaker_pickle(ROOT / 'tests' / 'data' / 'test_data.pckl.gzip')
    settings = load_protocol_file('fit_ace')
    fast = {**settings['default_inputs']['pacemaker']['settings'],
            **settings['protocols']['fast']['pacemaker']['settings']}  # fmt: skip
    fast['active_set'] = {**settings['default_inputs']['pacemaker']['settings']['active_set'],
                          **fast.get('active_set', {})}  # fmt: skip
    fast['maxiter'] = args.maxiter
    s = validate_settings(fast)

    header = (f'{"frames":>6} {"atoms":>6} {"iters":>5} {"pacemaker s":>11} {"s/iter":>7} {"yaml2yace s":>11} '
              f'{"activeset s":>11} {"pyace eval s":>12} {"pacemaker pred s":>16}')  # fmt: skip
    print(f'pacemaker fit wall time vs dataset size (fast protocol, maxiter {args.maxiter}, evaluator pyace, '
          f'OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]})')
    print(header)
    print('-' * len(header))
    for size in args.sizes:
        pick = np.sort(np.random.default_rng(size).choice(frames.n_frames, size, replace=False))
        subset = frames.select(pick)
        train, test = split_frameset(subset, s['test_fraction'], s['seed'])
        with tempfile.TemporaryDirectory() as tmp:
            folder = pathlib.Path(tmp)
            train.write_pacemaker_pickle(folder / input_yaml.TRAIN_FILENAME)
            test.write_pacemaker_pickle(folder / input_yaml.TEST_FILENAME)
            (folder / 'input.yaml').write_text(input_yaml.render_input_yaml(s, subset.elements))
            t_fit = run([str(BIN / 'pacemaker'), 'input.yaml'], folder)
            t_yace = run([str(BIN / 'pace_yaml2yace'), 'output_potential.yaml', '-o', 'output_potential.yace'], folder)
            t_asi = run([str(BIN / 'pace_activeset'), '-d', 'fitting_data_info.pckl.gzip', '-a',
                         'output_potential.yaml'], folder)  # fmt: skip
            log = (folder / 'log.txt').read_text()
            iterations = len(re.findall(r'Iteration\s+#\d+', log))
            stamps = re.findall(r'^(\S+ \S+) .*(?:Making predictions|Predictions are saved into test)', log, re.M)
            t_pred = float('nan')
            if len(stamps) >= 2:
                from datetime import datetime

                fmt = '%Y-%m-%d %H:%M:%S,%f'
                t_pred = (datetime.strptime(stamps[-1], fmt) - datetime.strptime(stamps[0], fmt)).total_seconds()
            start = time.perf_counter()
            evaluate(folder / 'output_potential.yaml', train)
            evaluate(folder / 'output_potential.yaml', test)
            t_eval = time.perf_counter() - start
        per_iter = t_fit / max(iterations, 1)
        print(f'{size:>6} {int(subset.n_atoms.sum()):>6} {iterations:>5} {t_fit:>11.1f} {per_iter:>7.1f} '
              f'{t_yace:>11.1f} {t_asi:>11.1f} {t_eval:>12.2f} {t_pred:>16.2f}')  # fmt: skip


if __name__ == '__main__':
    main()

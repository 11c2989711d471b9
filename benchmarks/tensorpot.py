"""Benchmark: pacemaker's evaluators, pyace vs tensorpot (TensorFlow), seconds per optimiser iteration.

40 frames (seeded) of the published NaFePO4 test set (tests/data/test_data.pckl.gzip), the study's settings
(`balanced`: cutoff 6.5, SBessel, 8 FinnisSinclairShiftedScaled densities, the study's reference energies) without
a ladder, at a small basis (16 functions per element = 64) and at the study basis (250 per element = 992 functions,
as /work/shared/reference/nafepo4/potential/input.yaml). pyace runs the pacemaker of this venv, tensorpot that of
the TensorFlow venv (`make install-tf`: .venv-tf). s/iteration is the mean time between pacemaker's per-iteration
reports (display_step 1), so TensorFlow's one-off graph building is not in it; `first eval s` is the time from the
start of the fit to pacemaker's report of the initial loss (for tensorpot mostly TensorFlow building its graph; pyace
reports it before any gradient). A run longer than --cap seconds is stopped; when it stopped before a second
iteration report, s/iteration reads `> cap`. `make benchmarks` runs the small basis only; add --study for both.

    .venv/bin/python benchmarks/tensorpot.py [--study] [--cap 900] [--tf-venv .venv-tf] [--gpu-index -1]
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
from datetime import datetime

import numpy as np
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiida_glassml.calculations.pacemaker import write_portable_pickle  # noqa: E402
from aiida_glassml.common.frames import FrameSet  # noqa: E402
from aiida_glassml.fitting import input_yaml  # noqa: E402
from aiida_glassml.fitting.settings import NAFEPO4_REFERENCE_ENERGY, validate_settings  # noqa: E402

STAMP = re.compile(r'^(\S+ \S+) I - \s*\n-+FIT STATS', re.M)
FIRST = re.compile(r'^(\S+ \S+) I - Initial state', re.M)
START = re.compile(r'^(\S+ \S+) I - Running fit backend', re.M)
PARAMS = re.compile(r'Total number of functions: (\d+) / number of parameters: (\d+)')


def _time(stamp: str) -> datetime:
    return datetime.strptime(stamp, '%Y-%m-%d %H:%M:%S,%f')


def fit(pacemaker: str, frames: FrameSet, functions: int, evaluator: str, optimizer: str, maxiter: int, cap: float,
        gpu_index: int | None) -> dict:  # fmt: skip
    s = validate_settings({'number_of_functions_per_element': functions, 'ladder_step': None, 'maxiter': maxiter,
                           'evaluator': evaluator, 'optimizer': optimizer, 'display_step': 1,
                           'reference_energy': NAFEPO4_REFERENCE_ENERGY})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        write_portable_pickle(frames, folder / input_yaml.TRAIN_FILENAME)
        data = input_yaml.pacemaker_input(s, frames.elements, test_filename=None)
        if evaluator == 'tensorpot' and gpu_index is not None:
            data['backend']['gpu_config'] = {'gpu_ind': gpu_index, 'mem_limit': 0}
        text = yaml.safe_dump(data, sort_keys=False)
        (folder / 'input.yaml').write_text(text)
        start = time.perf_counter()
        try:
            proc = subprocess.run([pacemaker, 'input.yaml'], cwd=folder, capture_output=True, text=True, timeout=cap,
                                  check=False)  # fmt: skip
            capped, rc = False, proc.returncode
        except subprocess.TimeoutExpired:
            capped, rc = True, None
        wall = time.perf_counter() - start
        log = (folder / 'log.txt').read_text() if (folder / 'log.txt').exists() else ''
    if rc not in (0, None):
        raise RuntimeError(f'{pacemaker} ({evaluator}) failed: {proc.stderr[-800:]}')
    stamps = [_time(m) for m in STAMP.findall(log)]
    begin = START.findall(log)
    first = FIRST.findall(log)
    params = PARAMS.search(log)
    return {
        'functions': int(params[1]) if params else None, 'parameters': int(params[2]) if params else None,
        'iterations': max(len(stamps) - 1, 0),
        'per_iteration': (stamps[-1] - stamps[0]).total_seconds() / (len(stamps) - 1) if len(stamps) > 1 else None,
        'first_eval': (_time(first[0]) - _time(begin[0])).total_seconds() if first and begin else None,
        'wall': wall, 'capped': capped,
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--cap', type=float, default=900.0, help='stop a run after this many seconds')
    parser.add_argument('--tf-venv', default=str(ROOT / '.venv-tf'))
    parser.add_argument('--gpu-index', type=int, default=None, help='tensorpot gpu_config.gpu_ind (-1: CPU only)')
    parser.add_argument('--study', action='store_true', help='also the study basis (992 functions; ~30 min)')
    args = parser.parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    pyace = str(pathlib.Path(sys.executable).parent / 'pacemaker')
    tensorpot = str(pathlib.Path(args.tf_venv) / 'bin' / 'pacemaker')
    if not os.access(tensorpot, os.X_OK):
        sys.exit(f'no {tensorpot}: make the TensorFlow venv first (`make install-tf`).')

    frames = FrameSet.read_pacemaker_pickle(ROOT / 'tests' / 'data' / 'test_data.pckl.gzip')
    pick = np.sort(np.random.default_rng(args.frames).choice(frames.n_frames, args.frames, replace=False))
    subset = frames.select(pick)
    runs = [
        ('small', 16, 'pyace', pyace, 'BFGS', 4),
        ('small', 16, 'tensorpot', tensorpot, 'BFGS', 6),
        ('small', 16, 'tensorpot', tensorpot, 'L-BFGS-B', 6),
    ]  # fmt: skip
    if args.study:
        runs += [
            ('study', 250, 'tensorpot', tensorpot, 'L-BFGS-B', 6),
            ('study', 250, 'tensorpot', tensorpot, 'BFGS', 3),
            ('study', 250, 'pyace', pyace, 'BFGS', 1),
        ]  # fmt: skip
    print(f'pacemaker seconds per iteration, {args.frames} frames ({int(subset.n_atoms.sum())} atoms), '
          f'OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]}, {os.cpu_count()} CPUs, cap {args.cap:g} s')  # fmt: skip
    header = (f'| basis | functions | parameters | evaluator | optimizer | iterations | s/iteration | first eval s |'
              f' wall s |')  # fmt: skip
    print(header)
    print('|' + ' --- |' * 9)
    for basis, functions, evaluator, exe, optimizer, maxiter in runs:
        r = fit(exe, subset, functions, evaluator, optimizer, maxiter, args.cap, args.gpu_index)
        per = f'{r["per_iteration"]:.2f}' if r['per_iteration'] else (f'> {args.cap:g}' if r['capped'] else '-')
        first = f'{r["first_eval"]:.1f}' if r['first_eval'] else (f'> {args.cap:g}' if r['capped'] else '-')
        wall = f'{r["wall"]:.0f}' + (' (capped)' if r['capped'] else '')
        print(f'| {basis} | {r["functions"]} | {r["parameters"]} | {evaluator} | {optimizer} | {r["iterations"]} | '
              f'{per} | {first} | {wall} |', flush=True)  # fmt: skip


if __name__ == '__main__':
    main()

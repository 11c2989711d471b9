"""Dynamics benchmark: all-origin MSD and self van Hove on a 3003-atom × 10,000-frame float32 trajectory, against
vitrum's ``Diffusion`` (the study author's tool) on the same data, in one run.

The trajectory is synthetic but built on the published ACE NaFePO4 glass: Na ions random-walk with a known D, every
other atom vibrates about its site; positions are wrapped into the cell, as MD codes write them. Our analysis runs
in a fresh subprocess so that its peak memory (tracemalloc and peak RSS) is its own.

Targets (issue 7): MSD + van Hove in < 15 s, peak memory < 3× the trajectory.

Run: ``.venv/bin/python benchmarks/analysis_dynamics.py [--frames 10000] [--vitrum-frames 10000] [--no-vitrum]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
GLASS = ROOT / 'tests' / 'data' / 'glasses' / 'ACE_300K_1.dat'
D_NA = 0.02  # Å²/ps of the synthetic Na random walk
TIMESTEP = 0.01  # ps between frames
VAN_HOVE_FRACTIONS = [0.01, 0.1, 0.3]  # of the trajectory length: 1, 10 and 30 ps for 10,000 frames


def build_trajectory(n_frames: int, path: pathlib.Path) -> dict:
    """Write the wrapped float32 positions (n_frames, 3003, 3) to ``path`` (.npy) and return the metadata."""
    from aiida_glassml.analysis import read_structure

    atoms = read_structure(GLASS)
    rng = np.random.default_rng(0)
    symbols = np.array(atoms.get_chemical_symbols())
    sites = atoms.positions.astype(np.float32)
    box = np.diag(atoms.cell.array).astype(np.float32)
    na = np.flatnonzero(symbols == 'Na')
    positions = np.lib.format.open_memmap(path, mode='w+', dtype=np.float32, shape=(n_frames, len(atoms), 3))
    walk = sites[na].copy()
    step = np.float32(np.sqrt(2 * D_NA * TIMESTEP))
    for frame in range(n_frames):
        current = sites + rng.standard_normal(sites.shape, dtype=np.float32) * np.float32(0.08)
        if frame:
            walk += rng.standard_normal(walk.shape, dtype=np.float32) * step
        current[na] = walk
        positions[frame] = np.mod(current, box)
    positions.flush()
    del positions
    return {'symbols': symbols.tolist(), 'cell': atoms.cell.array.tolist(), 'path': str(path)}


def child(meta_path: str) -> None:
    """Run our analysis on the stored trajectory; print a JSON line with times and memory."""
    from aiida_glassml.analysis import dynamics as dyn

    meta = json.loads(pathlib.Path(meta_path).read_text())
    positions = np.load(meta['path'])
    traj = dyn.Trajectory(positions, meta['symbols'], np.arange(len(positions)) * TIMESTEP, cell=np.array(meta['cell']))
    van_hove_times = [round(f * len(positions)) * TIMESTEP for f in VAN_HOVE_FRACTIONS]
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    start = time.perf_counter()
    result = dyn.analyse_dynamics(traj, van_hove_times=van_hove_times, van_hove_r_max=10.0, alpha2_lag_frames=[])
    msd_vh = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    fit = dyn.fit_diffusion(result.times, result.msd['Na'])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    dyn.analyse_dynamics(traj, species=['Na'], alpha2_max_origins=1000)
    na_alpha2 = time.perf_counter() - start
    # single-origin MSD of Na without drift removal: vitrum's definition, for the agreement check
    index = traj.indices('Na')
    unwrapped = dyn.unwrap_positions(np.asarray(positions[:, index], dtype=float), traj.cell)
    single_origin = np.mean(np.sum((unwrapped - unwrapped[0]) ** 2, axis=-1), axis=1)
    lag = int(round(van_hove_times[1] / TIMESTEP))
    print(json.dumps({
        'msd_vh_s': msd_vh, 'fit_s': fit_s, 'na_alpha2_s': na_alpha2, 'tracemalloc_peak': peak,
        'rss_loaded': rss_loaded, 'rss_peak': rss_peak, 'trajectory_bytes': positions.nbytes,
        'D': fit.D, 'D_err': fit.D_err, 'window': fit.window, 'single_origin_na': single_origin[::100].tolist(),
        'vh_lag': lag, 'vh_mean_r2': float((result.radial_van_hove_self('Na')[1] * result.van_hove_r**2).sum()
                                           * np.diff(result.van_hove_edges)[0]),
        'msd_at_lag': float(result.msd['Na'][lag]),
    }))  # fmt: skip


def run_vitrum(meta: dict, n_frames: int) -> dict:
    from ase import Atoms
    from vitrum.diffusion import Diffusion

    positions = np.load(meta['path'], mmap_mode='r')[:n_frames]
    start = time.perf_counter()
    frames = [Atoms(symbols=meta['symbols'], positions=positions[f], cell=meta['cell'], pbc=True) for f in range(n_frames)]
    convert = time.perf_counter() - start
    times = list(np.arange(n_frames) * TIMESTEP)
    start = time.perf_counter()
    diffusion = Diffusion(frames, times, wrapped=True)
    unwrap = time.perf_counter() - start
    start = time.perf_counter()
    msds = diffusion.get_mean_square_displacements()
    msd = time.perf_counter() - start
    start = time.perf_counter()
    skip = n_frames // 10
    D = diffusion.get_diffusion_coef(skip_first=skip, msds=msds)
    fit = time.perf_counter() - start
    lag = round(VAN_HOVE_FRACTIONS[1] * n_frames)
    start = time.perf_counter()
    for fraction in VAN_HOVE_FRACTIONS:
        diffusion.get_van_hove_self_correlation('Na', t_window=round(fraction * n_frames))
    van_hove = time.perf_counter() - start
    na_row = 1 + list(diffusion.species).index('Na')
    return {'convert_s': convert, 'unwrap_s': unwrap, 'msd_s': msd, 'fit_s': fit, 'van_hove_s': van_hove,
            'D': float(D[na_row]), 'single_origin_na': msds[na_row][::100].tolist(), 'lag': lag}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=10_000)
    parser.add_argument('--vitrum-frames', type=int, default=None, help='frames given to vitrum (default: all)')
    parser.add_argument('--no-vitrum', action='store_true')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        print(f'building a synthetic 3003-atom x {args.frames}-frame float32 trajectory ...', file=sys.stderr)
        meta = build_trajectory(args.frames, folder / 'positions.npy')
        (folder / 'meta.json').write_text(json.dumps(meta))
        env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
        out = subprocess.run([sys.executable, __file__, '--child', str(folder / 'meta.json')], capture_output=True,
                             text=True, env=env)  # fmt: skip
        if out.returncode:
            sys.exit(f'our analysis failed:\n{out.stderr}')
        ours = json.loads(out.stdout.strip().splitlines()[-1])
        theirs = None
        if not args.no_vitrum:
            n_vitrum = args.vitrum_frames or args.frames
            print(f'running vitrum.Diffusion on {n_vitrum} frames ...', file=sys.stderr)
            theirs = run_vitrum(meta, n_vitrum)
    size = ours['trajectory_bytes']
    print(f'\nDynamics benchmark: 3003 atoms x {args.frames} frames, float32 trajectory {size / 2**20:.0f} MiB, '
          f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}')  # fmt: skip
    print(f'{"task":64s} {"ours (s)":>9s} {"vitrum (s)":>11s} {"ratio":>7s}')
    vitrum_msd = vitrum_vh = None
    if theirs:
        vitrum_msd = theirs['unwrap_s'] + theirs['msd_s']
        vitrum_vh = theirs['van_hove_s']
        scale = args.frames / (args.vitrum_frames or args.frames)
    rows = [
        ('MSD all species + G_s(r,t) Na at 3 t (ours: all origins, FFT)', ours['msd_vh_s'],
         None if theirs is None else vitrum_msd + vitrum_vh),
        ('  vitrum split: unwrap + single-origin MSD', None, vitrum_msd),
        ('  vitrum split: G_s at 3 t (non-overlapping origins)', None, vitrum_vh),
        ('D fit (ours: auto window, per-atom error; vitrum: linregress)', ours['fit_s'], theirs and theirs['fit_s']),
        ('Na MSD + alpha2 at 37 lags (1000 origins each)', ours['na_alpha2_s'], None),
    ]  # fmt: skip
    for label, mine, other in rows:
        ratio = f'{other / mine:6.1f}x' if (mine and other) else ''
        print(f'{label:64s} {mine if mine is not None else float("nan"):9.2f} '
              f'{other if other is not None else float("nan"):11.2f} {ratio:>7s}')  # fmt: skip
    if theirs and scale != 1:
        print(f'(vitrum ran on {args.vitrum_frames} frames; its times scale about linearly, x{scale:g} for the full run)')
    extra = ours['tracemalloc_peak']
    print(f'\nmemory: trajectory {size / 2**20:.0f} MiB; extra allocated during MSD+van Hove (tracemalloc peak) '
          f'{extra / 2**20:.0f} MiB -> {(size + extra) / size:.2f}x the trajectory (target < 3x); '
          f'process peak RSS {ours["rss_peak"] / 2**20:.0f} MiB = {ours["rss_peak"] / size:.2f}x '
          f'(includes the interpreter, numpy and scipy)')  # fmt: skip
    print(f'time target: MSD + van Hove {ours["msd_vh_s"]:.2f} s (target < 15 s)')
    print('\nagreement:')
    print(f'  D(Na) true {D_NA:.4f} Å²/ps; ours {ours["D"]:.4f} ± {ours["D_err"]:.1e} (window {ours["window"][0]:.2f}-'
          f'{ours["window"][1]:.2f} ps)' + (f'; vitrum {theirs["D"]:.4f}' if theirs else ''))  # fmt: skip
    lag_t = ours['vh_lag'] * TIMESTEP
    print(f'  <r²> of Na at {lag_t:g} ps from G_s (ours) {ours["vh_mean_r2"]:.3f} Å² vs MSD {ours["msd_at_lag"]:.3f} Å² '
          f'vs 6Dt = {6 * D_NA * lag_t:.3f} Å²')  # fmt: skip
    if theirs:
        mine = np.asarray(ours['single_origin_na'][: len(theirs['single_origin_na'])])
        other = np.asarray(theirs['single_origin_na'])
        rel = np.max(np.abs(mine[1:] - other[1:]) / np.maximum(other[1:], 1e-12))
        print(f'  single-origin Na MSD (vitrum definition, same unwrapping): max relative difference {rel:.1e}')


if __name__ == '__main__':
    main()

"""Benchmark of the glass analysis library against vitrum (the study author's tool), in one run, on the same data:
the published 3003-atom ACE NaFePO4 glass (rings, neutron S(Q)) and a 3003-atom x 10,000-frame float32 trajectory
built on it (all-origin MSD and van Hove). Prints one table: time of each tool, the speed-up, and the agreement where
the definitions coincide, plus our peak memory as a multiple of the trajectory size.

The trajectory is synthetic but built on the glass: Na ions random-walk with a known D, every other atom vibrates
about its site; positions are wrapped into the cell, as MD codes write them. Our dynamics runs in a fresh subprocess
so that its peak memory (tracemalloc) is its own.

Times are the best of several calls; the S(Q) rows give the first call (numba JIT compile, or loading it from the
on-disk cache) apart from the steady state, for vitrum and for us.

Targets (issue 7, 2-core machine): rings and neutron S(Q) >= 10x faster than vitrum; MSD + van Hove on 3003 atoms x
10,000 frames in < 15 s with peak memory < 3x the trajectory.

Run: ``.venv/bin/python benchmarks/analysis.py [--glass GLASS.dat] [--frames 10000] [--vitrum-frames N]
[--no-dynamics]``.
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
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_GLASS = ROOT / 'tests' / 'data' / 'glasses' / 'ACE_300K_1.dat'
GLASS = DEFAULT_GLASS
D_NA = 0.02  # Å²/ps of the synthetic Na random walk
TIMESTEP = 0.01  # ps between frames
VAN_HOVE_FRACTIONS = [0.01, 0.1, 0.3]  # of the trajectory length: 1, 10 and 30 ps for 10,000 frames


def timed(function, repeat: int = 1):
    """(best wall time in s, result of the last call)."""
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_scattering(atoms) -> list[tuple]:
    import vitrum

    from aiida_glassml.analysis import compute_rdf, neutron_structure_factor, xray_structure_factor

    def theirs():
        scattering = vitrum.Scattering(atoms, disable_progress=True)
        return scattering, scattering.get_structure_factor('neutron')

    # both tools compile numba kernels (cached on disk) on their first call: time that apart from the steady state
    t_vitrum_first, _ = timed(theirs)
    t_vitrum, (scattering, s_vitrum) = timed(theirs, repeat=5)
    half = float(scattering.rrange)
    nbin = scattering.nbin
    q = scattering.qval

    def ours(method='auto'):
        rdf = compute_rdf(atoms, r_max=half, dr=half / nbin, method=method)
        return rdf, neutron_structure_factor(rdf, q)[1]

    t_ours_first, _ = timed(ours)
    t_ours, (rdf, s_ours) = timed(ours, repeat=5)
    t_pairs, (rdf_pairs, _) = timed(lambda: ours('pairs'), repeat=3)
    g_diff = max(np.abs(rdf.g(a, b) - scattering.get_partial_pdf((a, b))).max() for a, b in rdf.pairs)
    same = all(np.array_equal(rdf.pair_counts[key], rdf_pairs.pair_counts[key]) for key in rdf.pair_counts)
    rows = [
        ('neutron S(Q), 1 frame, steady state', t_vitrum, t_ours,
         f'max|ΔS|={np.abs(s_ours - s_vitrum).max():.2e}; max|Δg_ab|={g_diff:.2e}'),
        ('  first call (numba compile or cache load)', t_vitrum_first, t_ours_first, 'both tools'),
        ('  ours with the pair list (no numba)', t_vitrum, t_pairs,
         f'pair counts {"identical" if same else "differ"} to the kernel'),
    ]  # fmt: skip
    t_x_ours, sx = timed(lambda: xray_structure_factor(rdf, q)[1], repeat=3)
    rows.append(('X-ray S(Q) from g(r) (ours only)', float('nan'), t_x_ours, f'S(Q>15)={sx[q > 15].mean():.3f}'))
    return rows


def bench_rings(atoms) -> list[tuple]:
    import vitrum

    from aiida_glassml.analysis import guttman_rings

    ours_time, result = timed(lambda: guttman_rings(atoms, max_size=24), repeat=2)
    cutoffs = {tuple(key.split('-')): value for key, value in result.cutoffs.items()}

    def theirs():
        analysis = vitrum.RingAnalysis(atoms, ['P', 'Fe', 'O'], [('P', 'O'), ('Fe', 'O')])
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            analysis.calculate(cutoff=cutoffs, max_size=24)
        return analysis.get_ring_size_distribution()

    t_vitrum, distribution = timed(theirs)
    ours = result.size_distribution()
    same = ours == {int(k): int(v) for k, v in distribution.items()}
    return [('Guttman rings (P,Fe–O, ≤24 atoms)', t_vitrum, ours_time,
             f'size distributions {"identical" if same else "differ"} ({sum(ours.values())} rings)')]  # fmt: skip


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


def bench_dynamics(n_frames: int, vitrum_frames: int | None) -> list[tuple]:
    """MSD + self van Hove: ours (all origins, FFT, fresh process) against vitrum.Diffusion on the same frames."""
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        print(f'building a synthetic 3003-atom x {n_frames}-frame float32 trajectory ...', file=sys.stderr)
        meta = build_trajectory(n_frames, folder / 'positions.npy')
        (folder / 'meta.json').write_text(json.dumps(meta))
        env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
        out = subprocess.run([sys.executable, __file__, '--child', str(folder / 'meta.json')], capture_output=True,
                             text=True, env=env)  # fmt: skip
        if out.returncode:
            sys.exit(f'our dynamics analysis failed:\n{out.stderr}')
        ours = json.loads(out.stdout.strip().splitlines()[-1])
        n_vitrum = vitrum_frames or n_frames
        print(f'running vitrum.Diffusion on {n_vitrum} frames ...', file=sys.stderr)
        theirs = run_vitrum(meta, n_vitrum)
    size = ours['trajectory_bytes']
    memory = (size + ours['tracemalloc_peak']) / size
    mine = np.asarray(ours['single_origin_na'][: len(theirs['single_origin_na'])])
    other = np.asarray(theirs['single_origin_na'])
    rel = np.max(np.abs(mine[1:] - other[1:]) / np.maximum(other[1:], 1e-12))
    vitrum_s = theirs['unwrap_s'] + theirs['msd_s'] + theirs['van_hove_s']
    frames_note = '' if n_vitrum == n_frames else f' (vitrum on {n_vitrum} frames)'
    return [
        (f'MSD + G_s(Na, 3 t), {n_frames} frames{frames_note}', vitrum_s, ours['msd_vh_s'],
         f'single-origin Na MSD max rel. diff {rel:.1e}; ours all origins'),
        ('  peak memory (ours) / trajectory', float('nan'), float('nan'),
         f'{memory:.2f}x of {size / 2**20:.0f} MiB (target < 3x)'),
        ('D(Na) fit', theirs['fit_s'], ours['fit_s'],
         f'true {D_NA:.4f}; ours {ours["D"]:.4f} ± {ours["D_err"]:.1e}; vitrum {theirs["D"]:.4f} Å²/ps'),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--glass', type=pathlib.Path, default=DEFAULT_GLASS)
    parser.add_argument('--frames', type=int, default=10_000)
    parser.add_argument('--vitrum-frames', type=int, default=None, help='frames given to vitrum (default: all)')
    parser.add_argument('--no-dynamics', action='store_true')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from aiida_glassml.analysis import read_structure

    atoms = read_structure(args.glass)
    rows = bench_scattering(atoms) + bench_rings(atoms)
    if not args.no_dynamics:
        rows += bench_dynamics(args.frames, args.vitrum_frames)
    print(f'\nglass: {args.glass.name} ({len(atoms)} atoms); {os.cpu_count()} CPUs, load average '
          f'{os.getloadavg()[0]:.1f}')  # fmt: skip
    header = f'{"task":<48} {"vitrum (s)":>11} {"ours (s)":>9} {"speed-up":>9}  agreement'
    print(header)
    print('-' * len(header))
    for task, t_vitrum, t_ours, agreement in rows:
        ratio = f'{t_vitrum / t_ours:8.1f}x' if np.isfinite(t_vitrum) and np.isfinite(t_ours) else ' ' * 9
        vitrum = f'{t_vitrum:11.3f}' if np.isfinite(t_vitrum) else ' ' * 11
        ours = f'{t_ours:9.3f}' if np.isfinite(t_ours) else ' ' * 9
        print(f'{task:<48} {vitrum} {ours} {ratio}  {agreement}')


if __name__ == '__main__':
    main()

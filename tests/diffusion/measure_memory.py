"""Peak memory of the per-run diffusion analysis of a study-size trajectory: the published 3003-atom ACE glass
(tests/data/glasses/ACE_300K_1.dat) with 10^4 frames 1 ps apart (10 ns), Na on a random walk (D = 0.01 Å²/ps) and
the other atoms vibrating, streamed into float32/int32 memory-mapped files the way ``read_production`` stores a dump,
then ``analyse_production`` with the balanced parameters (van Hove at 100 ps, fast/slow g(r), rings).

Run: ``/usr/bin/time -v python tests/diffusion/measure_memory.py [n_frames]``; prints the peak RSS (``ru_maxrss``)
and the tracemalloc peak of numpy/python allocations. Not a test (it takes minutes); docs/diffusion.md quotes it.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from aiida_glassml.analysis import diffusion_series as series
from aiida_glassml.analysis.dynamics import Trajectory
from aiida_glassml.analysis.io import read_structure

GLASS = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'glasses' / 'ACE_300K_1.dat'


def synthetic_dump_arrays(folder: pathlib.Path, n_frames: int, seed: int = 0):
    atoms = read_structure(GLASS, format='lammps-data')
    cell = atoms.cell.array
    box = np.diag(cell)
    rng = np.random.default_rng(seed)
    na = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == 'Na')
    shape = (n_frames, len(atoms), 3)
    current = atoms.positions.copy()
    # frame by frame into raw files, as read_production streams a dump (no mapped pages while writing)
    with open(folder / 'positions.f32', 'wb') as positions, open(folder / 'images.i32', 'wb') as images:
        for _ in range(n_frames):
            current[na] += rng.normal(scale=np.sqrt(2 * 0.01 * 1.0), size=(na.size, 3))
            jitter = rng.normal(scale=0.1, size=current.shape)
            jitter[na] = 0.0
            unwrapped = current + jitter
            positions.write(np.mod(unwrapped, box).astype(np.float32).tobytes())
            images.write(np.floor_divide(unwrapped, box).astype(np.int32).tobytes())
    return atoms, shape


def main(n_frames: int = 10_000) -> None:
    with tempfile.TemporaryDirectory(prefix='glassml-memory-') as tmp:
        folder = pathlib.Path(tmp)
        start = time.perf_counter()
        atoms, shape = synthetic_dump_arrays(folder, n_frames)
        print(f'wrote {shape} float32 positions + int32 images in {time.perf_counter() - start:.0f} s; '
              f'peak RSS so far {series.peak_memory_mib():.0f} MiB')
        traj = Trajectory(
            positions=np.memmap(folder / 'positions.f32', dtype=np.float32, mode='r', shape=shape),
            images=np.memmap(folder / 'images.i32', dtype=np.int32, mode='r', shape=shape),
            symbols=atoms.get_chemical_symbols(), times=np.arange(n_frames) * 1.0, cell=atoms.cell.array,
            masses=atoms.get_masses(),
        )  # fmt: skip
        tracemalloc.start()
        start = time.perf_counter()
        out = series.analyse_production(traj, 900.0, {'mobility_rdf': True, 'rings': True})
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        fit = out['results']['diffusion']['Na']
        print(f'analysis of {shape[1]} atoms x {n_frames} frames: {time.perf_counter() - start:.0f} s; '
              f'D(Na) = {fit.get("D", float("nan")):.4f} ± {fit.get("D_err", float("nan")):.4f} Å²/ps (input 0.01); '
              f'tracemalloc peak {traced / 2**20:.0f} MiB; peak RSS {series.peak_memory_mib():.0f} MiB')


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)

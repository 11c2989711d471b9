"""A real LAMMPS run (Lennard-Jones liquid, 500 atoms, 2000 steps, < 1 s): our unwrapping of its wrapped dumps matches
its own unwrapped dump, and our MSD matches LAMMPS's ``compute msd com yes``."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from aiida_glassml.analysis import dynamics as dyn

LJ_INPUT = """
units lj
atom_style atomic
lattice fcc 0.8442
region box block 0 5 0 5 0 5
create_box 1 box
create_atoms 1 box
mass 1 1.0
velocity all create 1.5 87287 loop geom
pair_style lj/cut 2.5
pair_coeff 1 1 1.0 1.0 2.5
neighbor 0.3 bin
fix 1 all nve
compute m all msd com yes
fix msdout all ave/time 20 1 20 c_m[4] file msd.txt
dump w all custom 20 wrapped.dump id element x y z ix iy iz
dump_modify w element Ar
dump n all custom 20 noimages.dump id element x y z
dump_modify n element Ar
dump u all custom 20 unwrapped.dump id element xu yu zu
dump_modify u element Ar
run 2000
"""
FRAME_TIME = 20 * 0.005  # τ between dumped frames, used as the "ps" of the analysis


@pytest.fixture(scope='module')
def lammps_run(tmp_path_factory):
    from aiida_glassml.tools.setup import find_executable

    lmp = find_executable('lmp')
    if lmp is None:
        pytest.skip('`lmp` is not installed on this machine')
    folder = tmp_path_factory.mktemp('lj')
    (folder / 'in.lj').write_text(LJ_INPUT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'OMPI_ALLOW_RUN_AS_ROOT': '1', 'OMPI_ALLOW_RUN_AS_ROOT_CONFIRM': '1'}
    subprocess.run([lmp, '-in', 'in.lj', '-log', 'none', '-screen', 'none'], cwd=folder, env=env, check=True, timeout=120)
    return folder


def test_unwrapping_matches_lammps_unwrapped_coordinates(lammps_run):
    truth = dyn.read_trajectory(lammps_run / 'unwrapped.dump', timestep_ps=FRAME_TIME)
    assert not truth.wrapped
    with_images = dyn.read_trajectory(lammps_run / 'wrapped.dump', timestep_ps=FRAME_TIME)
    assert with_images.images is not None
    minimum_image = dyn.read_trajectory(lammps_run / 'noimages.dump', timestep_ps=FRAME_TIME)
    assert minimum_image.images is None and minimum_image.wrapped
    reference = np.asarray(truth.positions, dtype=float)
    reference_disp = reference - reference[0]
    for traj in (with_images, minimum_image):
        unwrapped = dyn.unwrap_positions(np.asarray(traj.positions, dtype=float), traj.cell, traj.images)
        np.testing.assert_allclose(unwrapped - unwrapped[0], reference_disp, atol=2e-4)
    assert np.count_nonzero(with_images.images[-1]) > 50  # many atoms did cross the cell boundaries


def test_msd_matches_lammps_compute_msd(lammps_run):
    traj = dyn.read_trajectory(lammps_run / 'noimages.dump', timestep_ps=FRAME_TIME)
    lammps_msd = np.loadtxt(lammps_run / 'msd.txt')[:, 1]
    # LAMMPS's compute msd: from the first frame only, centre-of-mass drift removed; compare that definition
    com, _, _ = dyn.species_displacement_sums(traj)
    unwrapped = dyn.unwrap_positions(np.asarray(traj.positions, dtype=float), traj.cell) - com[:, None, :]
    single_origin = np.mean(np.sum((unwrapped - unwrapped[0]) ** 2, axis=-1), axis=1)
    np.testing.assert_allclose(single_origin[1:], lammps_msd[1:], rtol=2e-3, atol=1e-5)
    # the all-origin MSD gives the same D as the slope of LAMMPS's MSD, within the noise of 500 atoms
    result = dyn.analyse_dynamics(traj, per_atom=True, alpha2_lag_frames=[])
    fit = dyn.fit_diffusion(result.times, result.msd['Ar'], per_atom_msd=result.per_atom_msd)
    late = result.times > 4.0
    d_lammps = np.polyfit(result.times[late], lammps_msd[late], 1)[0] / 6
    assert fit.D == pytest.approx(d_lammps, rel=0.15)
    assert 0.02 < fit.D < 0.2  # D* of the LJ liquid near its triple point is about 0.03-0.1


def test_memory_mapped_reading_gives_the_same_msd(lammps_run, tmp_path):
    in_memory = dyn.read_trajectory(lammps_run / 'wrapped.dump', timestep_ps=FRAME_TIME)
    mapped = dyn.read_trajectory(lammps_run / 'wrapped.dump', timestep_ps=FRAME_TIME, memmap_path=tmp_path / 'lj')
    assert isinstance(mapped.positions, np.memmap) and isinstance(mapped.images, np.memmap)
    a = dyn.analyse_dynamics(in_memory, alpha2_lag_frames=[]).msd['Ar']
    b = dyn.analyse_dynamics(mapped, alpha2_lag_frames=[], chunk_atoms=64).msd['Ar']
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)

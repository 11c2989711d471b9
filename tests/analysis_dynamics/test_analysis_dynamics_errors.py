"""Bad input to the dynamics core gets a clear error naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from aiida_glassml.analysis import AnalysisInputError, NonPeriodicCellError, TrajectoryMismatchError
from aiida_glassml.analysis import dynamics as dyn
from aiida_glassml.analysis import heterogeneity, hops


def _frames(n=4):
    return [Atoms(['Na', 'O', 'P'], positions=np.random.default_rng(i).random((3, 3)), cell=[5, 5, 5], pbc=True)
            for i in range(n)]  # fmt: skip


def test_varying_atom_count_is_rejected():
    frames = _frames()
    frames[2] = frames[2][:2]
    with pytest.raises(TrajectoryMismatchError, match='frame 2 has 2 atoms but frame 0 has 3'):
        dyn.Trajectory.from_frames(frames, timestep_ps=0.1)


def test_varying_atom_order_is_rejected():
    frames = _frames()
    frames[1] = frames[1][[1, 0, 2]]
    with pytest.raises(TrajectoryMismatchError, match='different order.*dump_modify sort id'):
        dyn.Trajectory.from_frames(frames, timestep_ps=0.1)


def test_varying_atoms_in_a_dump_file_are_rejected(tmp_path):
    dump = tmp_path / 'bad.dump'
    with dump.open('w') as handle:
        for step, n_atoms in ((0, 3), (10, 2)):
            handle.write(f'ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{n_atoms}\n')
            handle.write('ITEM: BOX BOUNDS pp pp pp\n0 5\n0 5\n0 5\nITEM: ATOMS id element x y z\n')
            for i in range(n_atoms):
                handle.write(f'{i + 1} Na {i}.0 1.0 1.0\n')
    with pytest.raises(TrajectoryMismatchError, match='fixed atom count'):
        dyn.read_trajectory(dump, timestep_ps=0.1)


def test_dump_without_elements_or_masses_is_rejected(tmp_path):
    from aiida_glassml.analysis import UnknownAtomTypeError

    dump = tmp_path / 'types.dump'
    dump.write_text('ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS pp pp pp\n0 5\n0 5\n0 5\n'
                    'ITEM: ATOMS id type x y z\n1 1 1.0 1.0 1.0\n')  # fmt: skip
    with pytest.raises(UnknownAtomTypeError):
        dyn.read_trajectory(dump, timestep_ps=0.1)


def test_uneven_times_are_rejected():
    with pytest.raises(dyn.TrajectoryError, match='evenly spaced'):
        dyn.Trajectory(np.zeros((3, 1, 3)), ['Na'], [0.0, 0.1, 0.3], wrapped=False)


def test_time_window_outside_the_trajectory_is_rejected():
    traj = dyn.Trajectory(np.zeros((11, 2, 3)), ['Na', 'Na'], np.arange(11) * 0.1, cell=np.eye(3) * 5)
    with pytest.raises(dyn.TimeWindowError, match='van Hove time 5 ps is outside the trajectory, which spans 0 to 1 ps'):
        dyn.analyse_dynamics(traj, van_hove_times=[5.0])
    with pytest.raises(dyn.TimeWindowError, match=r'fit window \(0.5, 3\) ps is outside'):
        dyn.fit_diffusion(traj.times, np.arange(11.0), (0.5, 3.0))
    with pytest.raises(dyn.TimeWindowError, match='outside the trajectory'):
        heterogeneity.classify_mobility(traj, 'Na', time=2.0)
    with pytest.raises(dyn.TimeWindowError, match='between 1 and 10 frames'):
        dyn.analyse_dynamics(traj, alpha2_lag_frames=[20])


def test_single_temperature_arrhenius_is_rejected():
    with pytest.raises(dyn.ArrheniusError, match='two or more temperatures, got 1. Add temperatures'):
        dyn.arrhenius_fit([800.0], [0.1])
    with pytest.raises(dyn.ArrheniusError, match='two or more temperatures, got 1'):
        dyn.arrhenius_fit([800.0, 800.0], [0.1, 0.11])
    with pytest.raises(dyn.ArrheniusError, match='at or above t_min = 900 K'):
        dyn.arrhenius_fit([700.0, 800.0, 1000.0], [0.01, 0.05, 0.1], t_min=900)
    with pytest.raises(dyn.ArrheniusError, match='finite D > 0'):
        dyn.arrhenius_fit([700.0, 800.0], [0.0, 0.05])


def test_non_periodic_cell_is_rejected_where_periodic_is_needed():
    traj = dyn.Trajectory(np.zeros((5, 2, 3)), ['Na', 'O'], np.arange(5) * 0.1, cell=None, wrapped=True)
    with pytest.raises(NonPeriodicCellError, match='`wrapped=False` if they are already unwrapped\) needs a periodic cell'):
        dyn.analyse_dynamics(traj)
    with pytest.raises(NonPeriodicCellError, match='distinct van Hove'):
        dyn.van_hove_distinct(traj, [0.1], 'Na')
    with pytest.raises(NonPeriodicCellError, match='a volume'):
        traj.volume()
    frames = [Atoms('NaO', positions=[[0, 0, 0], [1, 1, 1]]) for _ in range(3)]  # no cell at all
    gas = dyn.Trajectory.from_frames(frames, timestep_ps=0.1)
    assert gas.cell is None
    with pytest.raises(NonPeriodicCellError):
        hops.detect_hops(gas, 'Na')


def test_no_diffusive_regime_and_unknown_species_are_explained():
    rng = np.random.default_rng(0)
    caged = 5 + rng.normal(scale=0.1, size=(500, 20, 3))
    traj = dyn.Trajectory(caged, ['Na'] * 20, np.arange(500) * 0.1, wrapped=False)
    result = dyn.analyse_dynamics(traj, alpha2_lag_frames=[])
    with pytest.raises(dyn.DiffusiveRegimeError, match='Run longer or hotter, or give a fit window'):
        dyn.fit_diffusion(result.times, result.msd['Na'])
    with pytest.raises(AnalysisInputError, match="species 'Li' is not in the trajectory"):
        dyn.analyse_dynamics(traj, species=['Li'])
    with pytest.raises(dyn.TrajectoryError, match='r_max 30 Å exceeds half the cell width'):
        dyn.van_hove_distinct(dyn.Trajectory(caged, ['Na'] * 20, np.arange(500) * 0.1, cell=np.eye(3) * 10), [1.0], 'Na', r_max=30)

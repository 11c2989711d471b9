"""The pure parts of the diffusion series: the study's run schedule, production frames picked from a real-format
dump, D(T) over replicas and Arrhenius fits recovering a known Ea, and the ring–ion proximity."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from aiida_glassml.analysis import diffusion_series as series
from aiida_glassml.analysis.dynamics import KB_EV
from aiida_glassml.md import protocol as md


def test_balanced_run_is_the_study_schedule():
    run = md.diffusion_run(500.0, 'npt', dump_interval=1000)
    assert [s.kind for s in run.stages] == ['ramp', 'npt', 'nvt']
    ramp = run.stages[0]
    assert (ramp.t_start, ramp.t_end, ramp.rate, ramp.ensemble) == (300.0, 500.0, 1.0, 'npt')
    assert run.stages[1].time == 100.0 and run.stages[2].time == 10_000.0
    assert md.production_first_step(run) == 200_000 + 100_000
    assert run.stage_steps(run.stages[2]) // run.dump_interval == 10_000  # 10^4 production frames
    nvt = md.diffusion_run(500.0, 'nvt')
    assert [s.kind for s in nvt.stages] == ['ramp', 'nvt', 'nvt'] and nvt.stages[0].ensemble == 'nvt'
    assert [s.kind for s in md.diffusion_run(300.0).stages] == ['nvt', 'nvt']  # no ramp at the start temperature


@pytest.mark.parametrize(('kwargs', 'match'), [
    ({'temperature': -5.0}, '`temperature` must be positive'),
    ({'temperature': 500.0, 'heating_rate': 0.0}, '`heating_rate` must be positive'),
    ({'temperature': 500.0, 'production_time': -1.0}, '`production_time` must be positive'),
    ({'temperature': 500.0, 'heating': 'nph'}, 'unknown heating variant'),
])  # fmt: skip
def test_bad_schedule_names_the_problem(kwargs, match):
    with pytest.raises(md.MDProtocolError, match=match):
        md.diffusion_run(**kwargs)


def _write_dump(path, steps, positions, cell_length, images):
    with open(path, 'w') as handle:
        for step, frame, flags in zip(steps, positions, images):
            handle.write(f'ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(frame)}\n'
                         f'ITEM: BOX BOUNDS pp pp pp\n0 {cell_length}\n0 {cell_length}\n0 {cell_length}\n'
                         'ITEM: ATOMS id type element x y z ix iy iz\n')  # fmt: skip
            for i, (xyz, ixyz) in enumerate(zip(frame, flags)):
                element = 'Na' if i % 2 == 0 else 'O'
                handle.write(f'{i + 1} {1 + i % 2} {element} {xyz[0]:.6f} {xyz[1]:.6f} {xyz[2]:.6f} '
                             f'{ixyz[0]} {ixyz[1]} {ixyz[2]}\n')  # fmt: skip


def test_read_production_keeps_the_even_grid_after_the_first_step(tmp_path):
    """Frames before the production and a forced last frame off the grid are dropped; images unwrap."""
    rng = np.random.default_rng(0)
    steps = [0, 10, 20, 30, 40, 50, 60, 65]
    length = 10.0
    unwrapped = np.cumsum(rng.normal(scale=0.5, size=(len(steps), 6, 3)), axis=0) + 5.0
    wrapped, images = np.mod(unwrapped, length), np.floor_divide(unwrapped, length).astype(int)
    _write_dump(tmp_path / 'trajectory.dump', steps, wrapped, length, images)
    traj = series.read_production(tmp_path / 'trajectory.dump', first_step=20, every=10, timestep_ps=0.001)
    assert traj.n_frames == 5 and np.allclose(traj.times, [0.0, 0.01, 0.02, 0.03, 0.04])
    assert traj.images is not None and list(traj.symbols[:2]) == ['Na', 'O']
    restored = np.asarray(traj.positions) + np.asarray(traj.images) * length
    assert np.allclose(restored, unwrapped[2:7], atol=1e-4)
    # the same through memory-mapped files
    mapped = series.read_production(tmp_path / 'trajectory.dump', 20, 10, 0.001, memmap=True, scratch=tmp_path)
    assert isinstance(mapped.positions, np.memmap) and np.allclose(mapped.positions, traj.positions)
    with pytest.raises(series.AnalysisInputError, match='at least 3 dumped frames'):
        series.read_production(tmp_path / 'trajectory.dump', first_step=60, every=10, timestep_ps=0.001)


def test_analyse_production_of_a_random_walk_recovers_d():
    """Brownian Na with known D: the fitted D, the van Hove normalisation and the 25 % fast/slow sets."""
    from aiida_glassml.analysis.dynamics import Trajectory

    rng = np.random.default_rng(1)
    n_frames, n_na, dt, D = 400, 40, 0.01, 0.5
    steps = rng.normal(scale=np.sqrt(2 * D * dt), size=(n_frames, n_na, 3))
    na = np.cumsum(steps, axis=0)
    o = np.zeros((n_frames, 40, 3)) + rng.random((1, 40, 3)) * 20.0
    positions = np.concatenate([na, o], axis=1).astype(np.float32)
    traj = Trajectory(positions=positions, symbols=['Na'] * n_na + ['O'] * 40, times=np.arange(n_frames) * dt,
                      cell=np.eye(3) * 20.0, wrapped=False)  # fmt: skip
    out = series.analyse_production(traj, 1000.0, {'fit_window_fraction': [0.05, 0.3], 'van_hove_time': 0.5,
                                                   'mobility_time': 1.0})  # fmt: skip
    fit = out['results']['diffusion']['Na']
    assert fit['diffusive'] and fit['D'] == pytest.approx(D, rel=0.25) and fit['D_err'] > 0
    r, p_s = out['arrays']['r'], out['arrays']['P_s']
    assert np.sum(p_s) * (r[1] - r[0]) == pytest.approx(1.0, abs=0.02)
    assert out['arrays']['fast'].size == out['arrays']['slow'].size == 10
    moved = dict(zip(out['arrays']['ion_index'], out['arrays']['displacement']))
    assert min(moved[i] for i in out['arrays']['fast']) >= max(moved[i] for i in out['arrays']['slow'])
    assert out['results']['conductivity']['Na']['sigma_NE_S_cm'] > 0
    with pytest.raises(series.dyn.TimeWindowError, match='longer than the production'):
        series.analyse_production(traj, 1000.0, {'van_hove_time': 10.0})


def _run(temperature, variant, D, D_err=0.01):
    return {'temperature': temperature, 'variant': variant, 'volume_A3': 1000.0, 'counts': {'Na': 10},
            'diffusion': {'Na': {'diffusive': True, 'D': D, 'D_err': D_err}}}  # fmt: skip


def test_aggregate_series_recovers_the_activation_energy_and_the_low_t_deviation():
    ea, d0 = 0.5, 100.0
    runs = []
    for temperature in (500.0, 700.0, 900.0, 1100.0, 1300.0):
        D = d0 * np.exp(-ea / (KB_EV * temperature))
        if temperature == 500.0:
            D *= 0.1  # non-Arrhenius: slower than the high-T line
        for variant in ('nvt', 'npt'):
            runs += [_run(temperature, variant, D * 0.98, 0.01 * D), _run(temperature, variant, D * 1.02, 0.01 * D)]
    out = series.aggregate_series(runs, t_min=700.0, conductivity_temperature=500.0)
    row = out['diffusion']['nvt']['Na'][1]
    assert row['T'] == 700.0 and row['n_replicas'] == 2
    assert row['D'] == pytest.approx(d0 * np.exp(-ea / (KB_EV * 700.0)))
    assert row['D_err'] >= np.std([0.98, 1.02], ddof=1) / np.sqrt(2) * row['D'] * 0.99
    assert out['diffusion']['all']['Na'][0]['n_replicas'] == 4
    high = out['arrhenius']['nvt']['Na']['high']
    assert high['fitted'] and high['Ea_eV'] == pytest.approx(ea, rel=1e-3)
    assert high['low_T_deviation']['500.0'] == pytest.approx(np.log(0.1), abs=1e-3)
    assert out['arrhenius']['nvt']['Na']['all']['Ea_eV'] > ea  # the slow 500 K point steepens the all-T fit
    sigma = out['conductivity']['npt']['species']['Na']
    assert sigma['sigma_NE_S_cm'] > 0 and sigma['n_ions'] == 10


def test_ring_proximity_counts_rings_within_the_distance():
    atoms = Atoms('Na3', positions=[[1, 1, 1], [5, 5, 5], [9, 9, 9]], cell=np.eye(3) * 10.0, pbc=True)
    sizes, centres = [6, 8], [[1.5, 1, 1], [9.5, 9, 9]]
    found = series.ring_proximity(atoms, sizes, centres, {'fast': [0, 2], 'slow': [1]}, distance=2.0)
    assert found['fast']['size_fraction'] == {'6': 0.5, '8': 0.5} and found['fast']['mean_rings_per_ion'] == 1.0
    assert found['slow']['mean_rings_per_ion'] == 0.0 and found['slow']['size_fraction'] == {}
    assert found['slow']['n_ions'] == 1

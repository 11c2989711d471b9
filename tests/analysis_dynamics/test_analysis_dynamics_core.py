"""Analytic checks of the pure dynamics core: MSD, D, Arrhenius, conductivity, van Hove, α2, hops, mobility."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_glassml.analysis import dynamics as dyn
from aiida_glassml.analysis import heterogeneity, hops


def _trajectory(positions, timestep=0.1, cell=None, wrapped=False, symbols=None, **kwargs):
    n_atoms = positions.shape[1]
    return dyn.Trajectory(
        positions=positions, symbols=symbols if symbols is not None else ['Na'] * n_atoms,
        times=np.arange(positions.shape[0]) * timestep, cell=cell, wrapped=wrapped, **kwargs,
    )  # fmt: skip


def test_msd_fft_equals_direct_all_origin_average():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(size=(400, 5, 3)), axis=0) + 50.0  # far from the origin: tests the mean removal
    lags = [0, 1, 7, 100, 399]
    np.testing.assert_allclose(dyn.msd_fft(x)[:, lags], dyn.msd_direct(x, lags), rtol=1e-9, atol=1e-9)
    # float32 FFT: relative error well below 1e-4
    np.testing.assert_allclose(dyn.msd_fft(x.astype(np.float32))[:, lags[1:]], dyn.msd_direct(x, lags[1:]), rtol=1e-4)


def test_ballistic_msd_is_v2_t2():
    velocities = np.array([[1.0, 0.0, 0.0], [0.3, -0.4, 1.2], [0.0, 0.0, -2.0]])
    times = np.arange(200) * 0.05
    positions = times[:, None, None] * velocities[None]
    result = dyn.analyse_dynamics(_trajectory(positions, 0.05), remove_drift=False, per_atom=True, alpha2_lag_frames=[])
    speed2 = np.sum(velocities**2, axis=1)
    np.testing.assert_allclose(result.per_atom_msd, speed2[:, None] * times[None] ** 2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.msd['Na'], speed2.mean() * times**2, rtol=1e-6, atol=1e-6)
    # ballistic is not diffusive: the automatic regime detection must refuse it
    with pytest.raises(dyn.DiffusiveRegimeError, match='no diffusive regime'):
        dyn.fit_diffusion(result.times, result.msd['Na'])


def test_random_walk_gives_its_diffusion_coefficient():
    rng = np.random.default_rng(2)
    D, dt = 0.05, 0.1
    walk = np.cumsum(rng.normal(scale=np.sqrt(2 * D * dt), size=(2000, 200, 3)), axis=0)
    result = dyn.analyse_dynamics(_trajectory(walk, dt), per_atom=True, alpha2_lag_frames=[])
    fit = dyn.fit_diffusion(result.times, result.msd['Na'], per_atom_msd=result.per_atom_msd)
    assert fit.auto_window
    assert abs(fit.slope_loglog - 1.0) < 0.1
    assert 0.01 * D < fit.D_err < 0.1 * D  # 200 walkers: a few per cent
    assert abs(fit.D - D) < 3 * fit.D_err
    assert fit.error_method == 'per-atom standard error'
    assert fit.D_cm2_s == pytest.approx(fit.D * 1e-4)
    manual = dyn.fit_diffusion(result.times, result.msd['Na'], (10.0, 50.0))
    assert not manual.auto_window and manual.window == (10.0, 50.0)
    assert manual.D == pytest.approx(D, rel=0.1)


def test_unwrapping_by_image_flags_and_minimum_image_agree_with_truth():
    rng = np.random.default_rng(3)
    box = np.array([6.0, 7.0, 8.0])
    truth = np.cumsum(rng.normal(scale=0.4, size=(300, 20, 3)), axis=0) + rng.random((20, 3)) * box
    wrapped = np.mod(truth, box)
    images = np.rint((truth - wrapped) / box).astype(int)
    # minimum-image unwrapping starts from the wrapped first frame: displacements are exact
    unwrapped = dyn.unwrap_positions(wrapped, np.diag(box))
    np.testing.assert_allclose(unwrapped - unwrapped[0], truth - truth[0], atol=1e-9)
    np.testing.assert_allclose(dyn.unwrap_positions(wrapped, np.diag(box), images), truth, atol=1e-9)
    triclinic = np.array([[6.0, 0, 0], [1.5, 7.0, 0], [0.5, -1.0, 8.0]])
    fractional = truth @ np.linalg.inv(triclinic)
    wrapped_t = np.mod(fractional, 1.0) @ triclinic
    unwrapped = dyn.unwrap_positions(wrapped_t, triclinic)
    np.testing.assert_allclose(unwrapped - unwrapped[0], truth - truth[0], atol=1e-9)
    reference = dyn.msd_direct(truth, [1, 50]).mean(axis=0)
    for cell, data, flags in ((np.diag(box), wrapped, None), (np.diag(box), wrapped, images), (triclinic, wrapped_t, None)):
        traj = _trajectory(data, cell=cell, wrapped=True, images=flags)
        msd = dyn.analyse_dynamics(traj, remove_drift=False, alpha2_lag_frames=[]).msd['Na']
        np.testing.assert_allclose(msd[[1, 50]], reference, rtol=1e-9)


def test_centre_of_mass_drift_is_removed():
    rng = np.random.default_rng(4)
    n_frames = 500
    vibration = rng.normal(scale=0.1, size=(n_frames, 30, 3))
    drift = np.arange(n_frames)[:, None, None] * np.array([0.02, 0.0, -0.01])  # the whole system flows
    positions = 5.0 + vibration + drift
    traj = _trajectory(positions)
    with_drift = dyn.analyse_dynamics(traj, remove_drift=False, alpha2_lag_frames=[])
    without = dyn.analyse_dynamics(traj, alpha2_lag_frames=[])
    np.testing.assert_allclose(without.com_drift[-1], drift[-1, 0] + vibration[-1].mean(0) - vibration[0].mean(0), atol=1e-9)
    assert with_drift.msd['Na'][-100] > 10 * without.msd['Na'][-100]
    # what is left is the vibration: 2 * 3 * 0.1**2 (minus the 1/N of the removed centre of mass)
    assert without.msd['Na'][100:400].mean() == pytest.approx(0.06, rel=0.1)


def test_van_hove_self_is_normalised_and_gaussian_for_a_random_walk():
    rng = np.random.default_rng(5)
    D, dt = 0.1, 0.1
    walk = np.cumsum(rng.normal(scale=np.sqrt(2 * D * dt), size=(600, 300, 3)), axis=0)
    result = dyn.analyse_dynamics(_trajectory(walk, dt), van_hove_times=[0.5, 2.0, 10.0], van_hove_r_max=12.0,
                                  van_hove_dr=0.05)  # fmt: skip
    radial = result.radial_van_hove_self('Na')
    np.testing.assert_allclose(radial.sum(axis=1) * 0.05, 1.0, atol=2e-3)
    shell = 4.0 / 3.0 * np.pi * np.diff(result.van_hove_edges**3)
    np.testing.assert_allclose((result.van_hove_self['Na'] * shell).sum(axis=1), 1.0, atol=2e-3)
    from scipy.special import erf

    for k, time in enumerate(result.van_hove_times):
        # bin averages of the Maxwell distribution of |Δr| for a Gaussian step of variance 2Dt per axis
        s = np.sqrt(2 * D * time)
        cdf = erf(result.van_hove_edges / (s * np.sqrt(2))) - np.sqrt(2 / np.pi) * result.van_hove_edges / s * np.exp(
            -(result.van_hove_edges**2) / (2 * s * s)
        )
        exact = np.diff(cdf) / 0.05
        assert np.abs(radial[k] - exact).max() < 0.1 * exact.max()  # statistical noise of 300 walkers
    # α2 vanishes for Gaussian displacements
    assert np.all(np.abs(result.alpha2['Na']) < 0.05)


def test_alpha2_is_positive_for_a_two_population_system():
    rng = np.random.default_rng(6)
    fast = np.cumsum(rng.normal(scale=0.3, size=(400, 50, 3)), axis=0)
    slow = np.cumsum(rng.normal(scale=0.03, size=(400, 50, 3)), axis=0)
    times, alpha2 = dyn.non_gaussian_parameter(_trajectory(np.concatenate([fast, slow], axis=1)), remove_drift=False)
    assert np.all(alpha2['Na'][times > 1] > 0.5)  # exact: 3(a²+b²)/2... / ((a+b)/2)² - 1 ≈ 0.96 here


def test_distinct_van_hove_at_zero_time_is_the_partial_rdf(make_glass_trajectory, glass_atoms):
    from aiida_glassml.analysis import compute_rdf

    traj = make_glass_trajectory(D=0.01, n_frames=20, vibration=0.0)
    distinct = dyn.van_hove_distinct(traj, [0.0, 1.0], 'Na', 'O', r_max=8.0, dr=0.1, n_origins=1)
    reference = compute_rdf(glass_atoms, r_max=8.0, dr=0.1).g('Na', 'O')
    np.testing.assert_allclose(distinct['g_distinct'][0], reference, atol=1e-6)
    same = dyn.van_hove_distinct(traj, [0.0], 'Na', r_max=8.0, dr=0.1, n_origins=1)['g_distinct'][0]
    np.testing.assert_allclose(same, compute_rdf(glass_atoms, r_max=8.0, dr=0.1).g('Na', 'Na'), atol=1e-6)
    # far away g_d → 1
    assert distinct['g_distinct'][1][-20:].mean() == pytest.approx(1.0, abs=0.1)


def test_arrhenius_fit_recovers_activation_energy():
    rng = np.random.default_rng(7)
    Ea, D0 = 0.45, 50.0
    temperatures = np.array([600.0, 700, 800, 900, 1000, 1200])
    exact = D0 * np.exp(-Ea / (dyn.KB_EV * temperatures))
    noisy = exact * np.exp(rng.normal(scale=0.03, size=exact.size))
    fit = dyn.arrhenius_fit(temperatures, noisy, 0.03 * noisy)
    assert fit.Ea == pytest.approx(Ea, abs=3 * fit.Ea_err + 1e-3)
    assert 0 < fit.Ea_err < 0.05
    exact_fit = dyn.arrhenius_fit(temperatures, exact)
    assert exact_fit.Ea == pytest.approx(Ea, rel=1e-10)
    assert exact_fit.D0 == pytest.approx(D0, rel=1e-8)


def test_restricted_arrhenius_fit_measures_low_temperature_deviation():
    Ea, D0 = 0.3, 10.0
    temperatures = np.array([500.0, 600, 800, 1000, 1200])
    D = D0 * np.exp(-Ea / (dyn.KB_EV * temperatures))
    D[:2] *= 0.1  # below Tg the glass is 10x slower than the liquid-like extrapolation
    fit = dyn.arrhenius_fit(temperatures, D, t_min=700)
    assert fit.Ea == pytest.approx(Ea, rel=1e-8)
    np.testing.assert_array_equal(fit.fitted, [False, False, True, True, True])
    np.testing.assert_allclose(fit.deviation, [np.log(0.1)] * 2 + [0.0] * 3, atol=1e-8)


def test_nernst_einstein_conductivity_matches_hand_calculation():
    # 400 Na+ in (30 Å)³ at 600 K with D = 1e-6 cm²/s = 0.01 Å²/ps
    sigma = dyn.nernst_einstein_conductivity(0.01, 400, 30.0**3, 600.0, 1.0)
    expected = 400 / (30e-10) ** 3 * (1.602176634e-19) ** 2 * 1e-10 / (1.380649e-23 * 600) / 100
    assert sigma == pytest.approx(expected, rel=1e-12)


def test_haven_ratio_is_one_for_independent_ions():
    rng = np.random.default_rng(8)
    D, dt = 0.05, 0.1
    walk = np.cumsum(rng.normal(scale=np.sqrt(2 * D * dt), size=(4000, 200, 3)), axis=0)
    host = 5.0 + rng.normal(scale=0.05, size=(4000, 2000, 3))
    symbols = ['Na'] * 200 + ['Fe'] * 2000
    traj = _trajectory(np.concatenate([walk, host], axis=1), dt, symbols=symbols,
                       masses=np.r_[np.full(200, 1e-6), np.full(2000, 1.0)])  # fmt: skip
    result = dyn.analyse_dynamics(traj, species=['Na'], alpha2_lag_frames=[])
    fit = dyn.fit_diffusion(result.times, result.msd['Na'], (5.0, 40.0))
    haven = dyn.haven_ratio(result, 'Na', fit)
    assert haven['D_sigma'] == pytest.approx(D, rel=0.5)  # one collective coordinate: very noisy by nature
    assert 0.5 < haven['haven_ratio'] < 2.0


def test_hops_rate_jump_diffusion_and_concerted_fraction():
    n_frames, dt = 101, 0.1
    positions = np.zeros((n_frames, 3, 3))
    positions[:, 1, 0] = 10.0
    positions[:, 2, 0] = 20.0
    positions[30:, 0, 0] += 3.5  # ion 0 hops at 3.0 ps
    positions[70:, 0, 0] += 3.5  # and again at 7.0 ps
    positions[35:, 1, 1] += 4.0  # ion 1 hops at 3.5 ps: within 1 ps of ion 0's first hop
    traj = _trajectory(positions, dt, cell=np.diag([30.0, 30.0, 30.0]), wrapped=True)
    found = hops.detect_hops(traj, 'Na', 3.0, remove_drift=False)
    assert found.n_hops == 3
    np.testing.assert_allclose(np.sort(found.time), [3.0, 3.5, 7.0])
    assert found.rate == pytest.approx(3 / (3 * 10.0))
    assert found.D_jump == pytest.approx((2 * 3.5**2 + 4.0**2) / 3 * found.rate / 6)
    assert found.concerted_fraction == pytest.approx(2 / 3)
    far = hops.detect_hops(traj, 'Na', 3.0, remove_drift=False, concerted_distance=5.0)
    assert far.concerted_fraction == 0.0  # the two ions are 10 Å apart
    assert hops.detect_hops(traj, 'Na', 5.0, remove_drift=False).n_hops == 1  # only the combined 7 Å move


def test_fast_and_slow_classes_and_their_partial_rdf(make_glass_trajectory):
    traj = make_glass_trajectory(D=0.05, n_frames=100, vibration=0.05)
    classes = heterogeneity.classify_mobility(traj, 'Na', time=5.0)
    n_na = int((traj.symbols == 'Na').sum())
    assert classes.fast.size == classes.slow.size == n_na // 4
    assert not set(classes.fast) & set(classes.slow)
    ranked = dict(zip(classes.indices, classes.displacement))
    assert min(ranked[i] for i in classes.fast) >= max(ranked[i] for i in classes.slow)
    atoms = heterogeneity.frame_atoms(traj, 0.0)
    rdf = heterogeneity.mobility_partial_rdf(atoms, classes, ['Fe', 'O', 'Na'], r_max=8.0, dr=0.1)
    for key in ('fast-fast', 'slow-slow', 'fast-slow', 'fast-Fe', 'slow-O', 'fast-Na'):
        assert np.all(np.isfinite(rdf[key])) and rdf[key][-10:].mean() == pytest.approx(1.0, abs=0.35), key
    # a class of all Na reproduces the plain Na–O g(r)
    from aiida_glassml.analysis import compute_rdf

    every = heterogeneity.MobilityClasses('Na', 5.0, 0.0, classes.indices, classes.displacement,
                                          classes.indices, classes.indices[:1], 0.25)  # fmt: skip
    np.testing.assert_allclose(
        heterogeneity.mobility_partial_rdf(atoms, every, ['O'], r_max=8.0, dr=0.1)['fast-O'],
        compute_rdf(atoms, r_max=8.0, dr=0.1).g('Na', 'O'), atol=1e-9,
    )  # fmt: skip


def test_ring_centre_distributions_per_mobility_class(make_glass_trajectory):
    from aiida_glassml.analysis import guttman_rings

    traj = make_glass_trajectory(D=0.05, n_frames=60)
    classes = heterogeneity.classify_mobility(traj, 'Na', time=4.0)
    atoms = heterogeneity.frame_atoms(traj, 0.0)
    rings = guttman_rings(atoms, max_size=12)
    assert len(rings.centres) > 100
    result = heterogeneity.mobility_ring_centre_rdf(atoms, classes, rings.centres, r_max=8.0, dr=0.1)
    for name in ('fast', 'slow'):
        assert np.all(np.isfinite(result[name]))
        assert result[name][-10:].mean() == pytest.approx(1.0, abs=0.3)
        assert result[f'n_{name}'][-1] > 0


def test_read_trajectory_from_extxyz_and_lammps_dump(tmp_path, make_glass_trajectory):
    import ase.io
    from ase import Atoms

    traj = make_glass_trajectory(D=0.05, n_frames=12, n_atoms=200)
    frames = [Atoms(symbols=list(traj.symbols), positions=traj.positions[f], cell=traj.cell, pbc=True)
              for f in range(traj.n_frames)]  # fmt: skip
    ase.io.write(tmp_path / 'traj.extxyz', frames, format='extxyz')
    back = dyn.read_trajectory(tmp_path / 'traj.extxyz', timestep_ps=0.1)
    np.testing.assert_allclose(back.positions, traj.positions, atol=1e-5)
    assert list(back.symbols) == list(traj.symbols)
    dump = tmp_path / 'traj.dump'
    with dump.open('w') as handle:
        for f in range(traj.n_frames):
            handle.write(f'ITEM: TIMESTEP\n{f * 100}\nITEM: NUMBER OF ATOMS\n{traj.n_atoms}\n')
            handle.write('ITEM: BOX BOUNDS pp pp pp\n' + ''.join(f'0 {L}\n' for L in np.diag(traj.cell)))
            handle.write('ITEM: ATOMS id element x y z\n')
            order = np.random.default_rng(f).permutation(traj.n_atoms)  # unsorted ids, as MPI runs write them
            for i in order:
                x, y, z = traj.positions[f, i]
                handle.write(f'{i + 1} {traj.symbols[i]} {x:.6f} {y:.6f} {z:.6f}\n')
    back = dyn.read_trajectory(dump, timestep_ps=0.1)
    np.testing.assert_allclose(back.positions, traj.positions, atol=1e-5)
    assert list(back.symbols) == list(traj.symbols)
    np.testing.assert_allclose(back.times, traj.times)

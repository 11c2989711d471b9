"""Unit conversion: the one place where ps, fs, steps, bar and g/cm³ meet."""

import pytest

from aiida_glassml.common import units


def test_ramp_3000_to_300_at_1_k_per_ps_is_exactly_2_7_million_steps_at_1_fs():
    assert units.ramp_steps(3000.0, 300.0, 1.0, units.timestep_ps(1.0)) == 2_700_000
    assert units.ramp_steps(300.0, 3000.0, 1.0, 0.001) == 2_700_000
    assert units.ramp_time(3000.0, 300.0, 1.0) == 2700.0


@pytest.mark.parametrize(
    ('time_ps', 'timestep_ps', 'steps'),
    [(10.0, 0.001, 10_000), (100.0, 0.001, 100_000), (0.3, 0.1, 3), (2.0, 0.0005, 4000), (0.0015, 0.001, 2)],
)
def test_steps_from_time_is_exact_and_rounds_up(time_ps, timestep_ps, steps):
    assert units.steps_from_time(time_ps, timestep_ps) == steps


def test_time_and_steps_round_trip():
    assert units.time_from_steps(2_700_000, 0.001) == 2700.0
    assert units.ps_to_fs(0.001) == 1.0
    assert units.fs_to_ps(1.0) == 0.001


def test_pressure_and_density_conversions():
    assert units.bar_to_gpa(1.0e4) == 1.0
    assert units.gpa_to_bar(0.1) == pytest.approx(1000.0)
    assert units.ev_per_a3_to_gpa(1.0) == pytest.approx(160.2176634)
    assert units.ev_per_a3_to_bar(units.bar_to_ev_per_a3(123.0)) == pytest.approx(123.0)
    # one mole of amu in one cm³ is one g/cm³: N_A amu / 1e24 Å³
    assert units.density_g_cm3(6.02214076e23, 1.0e24) == pytest.approx(1.0, rel=1e-9)


def test_ase_time_unit_matches_ase():
    from ase import units as ase_units

    assert units.ps_to_ase_time(1.0) == pytest.approx(1000 * ase_units.fs)


@pytest.mark.parametrize(
    ('call', 'message'),
    [
        (lambda: units.ramp_steps(3000, 300, 0.0, 0.001), 'rate must be positive'),
        (lambda: units.steps_from_time(-1.0, 0.001), 'must not be negative'),
        (lambda: units.steps_from_time(1.0, 0.0), 'timestep must be positive'),
    ],
)
def test_bad_conversions_raise(call, message):
    with pytest.raises(units.UnitsError, match=message):
        call()

"""The engine-neutral MD protocol: defaults, serialisation, step counts and bad input."""

import json

import pytest

from aiida_glassml.md import protocol as md


def test_melt_quench_has_the_study_schedule():
    protocol = md.melt_quench()
    kinds = [stage.kind for stage in protocol.stages]
    assert kinds == ['minimize', 'nvt', 'npt', 'instant_temperature', 'nvt', 'npt', 'ramp', 'npt']
    steps = [protocol.stage_steps(stage) for stage in protocol.stages]
    assert steps == [0, 10_000, 10_000, 0, 100_000, 100_000, 2_700_000, 100_000]
    ramp = protocol.stages[6]
    assert (ramp.t_start, ramp.t_end, ramp.rate, ramp.ensemble, ramp.pressure) == (3000.0, 300.0, 1.0, 'npt', 0.0)
    assert protocol.tdamp == 0.1 and protocol.pdamp == 1.0 and protocol.thermostat == 'nose-hoover'
    assert md.cooling_stage_index(protocol) == 6


def test_fast_melt_quench_scales_every_stage():
    full, fast = md.melt_quench(), md.melt_quench(fast=True)
    assert fast.total_steps * 100 == full.total_steps
    assert fast.stages[6].rate == 100.0
    assert md.melt_quench(time_scale=0.001, cooling_rate=1000.0).stages[6].rate == 1000.0


def test_round_trip_through_json():
    protocol = md.melt_quench(gamma=md.GammaTracking(interval=20, gamma_lo=2.5, gamma_hi=30.0), thermostat='langevin',
                              dump_fields=('positions', 'velocities'))
    data = json.loads(json.dumps(protocol.to_dict()))
    assert md.MDProtocol.from_dict(data) == protocol


def test_stage_step_ranges_are_contiguous():
    protocol = md.MDProtocol([md.Minimize(), md.NVT(300.0, 1.0), md.Ramp(300.0, 500.0, 100.0)])
    assert md.stage_step_ranges(protocol) == [(0, 0), (0, 1000), (1000, 3000)]


@pytest.mark.parametrize(
    ('build', 'message'),
    [
        (lambda: md.MDProtocol([md.NVT(300.0, -1.0)]), '`time` must be positive'),
        (lambda: md.MDProtocol([md.NPT(-300.0, 0.0, 1.0)]), '`temperature` must be positive'),
        (lambda: md.MDProtocol([md.InstantTemperature(-5.0)]), 'must not be negative'),
        (lambda: md.MDProtocol([md.Ramp(3000.0, 300.0, 0.0)]), 'rate` is 0 K/ps'),
        (lambda: md.MDProtocol([md.Ramp(3000.0, 300.0, -1.0)]), 'give the magnitude'),
        (lambda: md.MDProtocol([md.Ramp(300.0, 300.0, 1.0)]), 'has no length'),
        (lambda: md.MDProtocol([md.NVT(300.0, 1.0)], gamma=md.GammaTracking(10, 30.0, 2.5)), 'gamma_lo'),
        (lambda: md.MDProtocol([md.NVT(300.0, 1.0)], gamma=md.GammaTracking(10, 5.0, 5.0)), 'gamma_lo'),
        (lambda: md.MDProtocol([md.NVT(300.0, 1.0)], timestep=1.0), 'so 1 fs is 0.001'),
        (lambda: md.MDProtocol([]), 'no stages'),
        (lambda: md.MDProtocol([md.NVT(300.0, 1.0)], thermostat='berendsen'), 'unknown thermostat'),
        (lambda: md.MDProtocol([md.NVT(300.0, 1.0)], dump_fields=('positions', 'charges')), 'unknown dump fields'),
    ],
)
def test_bad_protocols_are_refused_with_the_fix(build, message):
    with pytest.raises(md.MDProtocolError, match=message):
        build().validate()


def test_from_dict_refuses_unknown_keys():
    data = md.melt_quench().to_dict()
    data['stages'][1]['temprature'] = 300.0
    with pytest.raises(md.MDProtocolError, match='unknown keys'):
        md.MDProtocol.from_dict(data)


def test_from_dict_names_an_unknown_gamma_key():
    data = md.melt_quench(gamma=md.GammaTracking()).to_dict()
    data['gamma']['gama_hi'] = 30.0
    with pytest.raises(md.MDProtocolError, match=r"gamma: unknown keys \['gama_hi'\].*gamma_hi"):
        md.MDProtocol.from_dict(data)

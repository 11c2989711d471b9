"""The pure ASE runner (no AiiDA): ramps move the thermostat target, NVT keeps the cell, the command-line entry
writes the files the parser reads, and gamma tracking without a gamma-reporting calculator is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_glassml.md import ase_runner
from aiida_glassml.md.protocol import NPT, NVT, GammaTracking, InstantTemperature, MDProtocol, Ramp
from aiida_glassml.parsers.ase_md import read_gamma, read_thermo


def copper(repeat: int = 2):
    return bulk('Cu', cubic=True).repeat(repeat)


@pytest.mark.parametrize('thermostat', ['nose-hoover', 'langevin'])
def test_set_target_temperature_moves_the_thermostat(thermostat):
    protocol = MDProtocol(stages=[NPT(300.0, 0.0, 0.01)], thermostat=thermostat)
    atoms = copper()
    atoms.calc = EMT()
    dynamics = ase_runner._make_dynamics(atoms, protocol, 300.0, 0.0, np.random.default_rng(0))
    ase_runner.set_target_temperature(dynamics, 900.0)
    if thermostat == 'langevin':
        assert dynamics.temperature_K == 900.0
    else:
        from ase import units

        assert dynamics._thermostat._kT == pytest.approx(units.kB * 900.0)
        assert dynamics._barostat._kT == pytest.approx(units.kB * 900.0)


def test_heating_ramp_follows_its_target(tmp_path):
    """EMT Cu heated 300 -> 1500 K at 4000 K/ps (150 steps of 2 fs): the temperature rises with the target
    and every thermo line is written with the step, time and volume of an NVT run."""
    protocol = MDProtocol(stages=[InstantTemperature(300.0), Ramp(300.0, 1500.0, 4000.0), NVT(1500.0, 0.1)],
                          timestep=0.002, tdamp=0.02, thermo_interval=10, dump_interval=50, seed=11)  # fmt: skip
    summary = ase_runner.run_protocol(copper(3), EMT(), protocol, tmp_path, log=None)
    assert summary['stop_reason'] == 'completed'
    assert summary['n_steps'] == protocol.total_steps == 150 + 50
    thermo = read_thermo((tmp_path / ase_runner.FILES['thermo']).read_text())
    assert thermo['step'].tolist() == list(range(0, 201, 10))
    assert np.allclose(thermo['time'], thermo['step'] * 0.002)
    assert np.allclose(thermo['volume'], thermo['volume'][0])  # NVT
    assert np.mean(thermo['temperature'][-5:]) > 2.5 * np.mean(thermo['temperature'][:3])
    assert summary['n_trajectory_frames_full'] == 5
    assert summary['max_gamma'] is None and not (tmp_path / ase_runner.FILES['gamma']).exists()


def test_npt_at_high_pressure_compresses(tmp_path):
    protocol = MDProtocol(stages=[NPT(300.0, 5.0e5, 0.2)], timestep=0.002, tdamp=0.02, pdamp=0.1, thermo_interval=20,
                          dump_interval=0, seed=2)  # fmt: skip
    summary = ase_runner.run_protocol(copper(), EMT(), protocol, tmp_path, log=None)
    thermo = read_thermo((tmp_path / ase_runner.FILES['thermo']).read_text())
    assert summary['final_volume'] < 0.97 * thermo['volume'][0]  # 50 GPa squeezes copper by several %
    assert summary['full_trajectory_file'] is None


def test_command_line_entry_runs_input_json(tmp_path):
    protocol = MDProtocol(stages=[NVT(500.0, 0.01)], timestep=0.001, thermo_interval=5, dump_interval=5)
    ase_runner.write_input(tmp_path, copper(), protocol, {'type': 'ase', 'name': 'emt', 'kwargs': {}})
    proc = subprocess.run([sys.executable, '-m', 'aiida_glassml.md.ase_runner', 'input.json'], cwd=tmp_path,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / ase_runner.FILES['results']).read_text())
    assert summary['stop_reason'] == 'completed' and summary['n_steps'] == 10
    assert 'stage 0 nvt: 10 steps' in proc.stdout
    for name in ('thermo', 'final', 'dump'):
        assert (tmp_path / ase_runner.FILES[name]).stat().st_size > 0


def test_run_script_calls_the_runner_on_input_json(tmp_path):
    """The run_md.py the CalcJob writes, run as a plain script, gives the same outputs as the module entry point."""
    protocol = MDProtocol(stages=[NVT(500.0, 0.01)], timestep=0.001, thermo_interval=5, dump_interval=5)
    ase_runner.write_input(tmp_path, copper(), protocol, {'type': 'ase', 'name': 'emt', 'kwargs': {}})
    (tmp_path / ase_runner.FILES['script']).write_text(ase_runner.run_script())
    proc = subprocess.run([sys.executable, ase_runner.FILES['script']], cwd=tmp_path, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / ase_runner.FILES['results']).read_text())
    assert summary['stop_reason'] == 'completed' and summary['n_steps'] == 10
    assert set(summary['versions']) >= {'aiida-glassml', 'ase', 'pyace'}


def test_dump_frames_are_wrapped_with_image_flags(tmp_path):
    """Hot copper: atoms on the cell faces cross them; the dump holds wrapped positions plus integer images."""
    from ase.io import iread

    from aiida_glassml.md.outputs import unwrap

    protocol = MDProtocol(stages=[NVT(1500.0, 0.1)], timestep=0.002, thermo_interval=10, dump_interval=5, seed=1,
                          thermostat='langevin', tdamp=0.05)  # fmt: skip
    ase_runner.run_protocol(copper(), EMT(), protocol, tmp_path, log=None)
    frames = list(iread(tmp_path / ase_runner.FILES['dump'], format='extxyz'))
    images = np.stack([f.arrays['images'] for f in frames])
    fractional = np.stack([f.get_scaled_positions(wrap=False) for f in frames])
    assert np.issubdtype(images.dtype, np.integer) and np.any(images != 0)
    assert np.all((fractional >= 0) & (fractional < 1))
    unwrapped = unwrap(np.stack([f.positions for f in frames]), images, np.stack([f.cell.array for f in frames]))
    assert np.linalg.norm(np.diff(unwrapped, axis=0), axis=-1).max() < 1.0  # a continuous path


def test_failure_is_reported_in_results_json(tmp_path):
    """Gamma tracking with EMT (no gamma): exit code 1, and results.json says why for the parser."""
    protocol = MDProtocol(stages=[NVT(500.0, 0.01)], gamma=GammaTracking(interval=5))
    ase_runner.write_input(tmp_path, copper(), protocol, {'type': 'ase', 'name': 'ase.calculators.emt:EMT'})
    proc = subprocess.run([sys.executable, '-m', 'aiida_glassml.md.ase_runner', 'input.json'], cwd=tmp_path,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 1
    summary = json.loads((tmp_path / ase_runner.FILES['results']).read_text())
    assert summary['stop_reason'] == 'error'
    assert 'reports no `gamma`' in summary['message'] and 'active set' in summary['message']


def test_unknown_calculator_names_the_accepted_forms():
    with pytest.raises(ase_runner.AseRunnerError, match='unknown ASE calculator .*import path'):
        ase_runner.resolve_calculator_class('not_a_calculator')


def test_thermo_and_gamma_readers_keep_the_last_line_of_a_repeated_step():
    thermo = read_thermo('# header\n0 0 1 1 1 1 1 1\n0 0 2 2 2 2 2 2\n5 0.005 3 3 3 3 3 3\n')
    assert thermo['step'].tolist() == [0, 5] and thermo['temperature'].tolist() == [2.0, 3.0]
    steps, gamma = read_gamma('# step max_gamma\n0 1.0\n10 2.5\n')
    assert steps.tolist() == [0, 10] and gamma.tolist() == [1.0, 2.5]

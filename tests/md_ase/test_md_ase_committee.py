"""Committee MD: the runner drives the dynamics with the committee mean and records σ_F,max (pure, LJ members); an
AseMDCalculation with two small real ACE fits records, saves and halts on it; bad committees are refused before
anything is stored."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory
from ase.build import bulk
from ase.calculators.lj import LennardJones

from aiida_glassml.md import ase_runner
from aiida_glassml.md.committee import CommitteeCalculator, force_deviation
from aiida_glassml.md.protocol import NVT, ForceDeviationTracking, GammaTracking, MDProtocol
from aiida_glassml.parsers.ase_md import read_gamma

AseMDCalculation = CalculationFactory('glassml.ase_md')


def lj_committee():
    """Two Lennard-Jones members of one kind that differ by their hyperparameters."""
    return [LennardJones(sigma=2.30, epsilon=0.40, rc=6.0), LennardJones(sigma=2.32, epsilon=0.42, rc=6.0)]


def test_committee_calculator_is_the_mean_and_reports_the_deviation():
    atoms = bulk('Cu', cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    members = lj_committee()
    forces = []
    for calc in members:
        copy = atoms.copy()
        copy.calc = calc
        forces.append(copy.get_forces())
    atoms.calc = CommitteeCalculator(lj_committee())
    assert np.allclose(atoms.get_forces(), np.mean(forces, axis=0))
    assert np.allclose(atoms.calc.results['force_deviation'], force_deviation(forces))
    assert atoms.calc.results['max_force_deviation'] == pytest.approx(force_deviation(forces).max())
    assert atoms.get_stress().shape == (6,)


def test_runner_records_saves_and_halts_on_sigma(tmp_path):
    """A hot LJ copper cell: every check is logged, frames above sigma_lo are saved with their σ, and a sigma_hi
    below what the run reaches stops it with stop_reason force_deviation_halt."""
    atoms = bulk('Cu', cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    tracking = ForceDeviationTracking(interval=2, sigma_lo=0.6, sigma_hi=50.0)
    protocol = MDProtocol(stages=[NVT(2000.0, 0.04)], timestep=0.002, tdamp=0.02, thermo_interval=5, dump_interval=10,
                          seed=3, force_deviation=tracking)  # fmt: skip
    summary = ase_runner.run_protocol(atoms.copy(), CommitteeCalculator(lj_committee()), protocol, tmp_path, log=None)
    steps, sigma = read_gamma((tmp_path / ase_runner.FILES['force_deviation']).read_text())
    assert summary['stop_reason'] == 'completed' and steps.tolist() == list(range(0, 21, 2))
    assert summary['max_force_deviation'] == pytest.approx(sigma.max())
    assert summary['n_extrapolative_frames'] == int((sigma > 0.6).sum()) > 0
    from ase.io import read

    saved = read(tmp_path / ase_runner.FILES['extrapolative'], ':')
    assert all(frame.info['max_force_deviation'] > 0.6 for frame in saved)
    assert all(np.isclose(frame.arrays['force_deviation'].max(), frame.info['max_force_deviation']) for frame in saved)

    halting = MDProtocol(stages=[NVT(2000.0, 0.04)], timestep=0.002, tdamp=0.02, thermo_interval=5, dump_interval=10,
                         seed=3, force_deviation=ForceDeviationTracking(interval=2, sigma_lo=0.3, sigma_hi=0.5))  # fmt: skip
    summary = ase_runner.run_protocol(atoms.copy(), CommitteeCalculator(lj_committee()), halting, tmp_path / 'halt',
                                      log=None)  # fmt: skip
    assert summary['stop_reason'] == 'force_deviation_halt' and summary['max_force_deviation'] > 0.5
    assert summary['n_steps'] < halting.total_steps and 'sigma_hi 0.5' in summary['message']


# -- AseMDCalculation with two small real ACE fits ------------------------------------------------------------------
def fit_small_ace(folder, frames, seed: int):
    """A real pacemaker fit with the `fast` protocol's tiny basis on ``frames`` (a pacemaker DataFrame), started in
    the background; returns the process."""
    from aiida_glassml.fitting.input_yaml import render_input_yaml
    from aiida_glassml.fitting.settings import validate_settings
    from aiida_glassml.protocols import load_protocol_file
    from aiida_glassml.tools.setup import find_executable

    executable = find_executable('pacemaker')
    if executable is None:
        pytest.skip('`pacemaker` (python-ace) is not installed')
    fast = load_protocol_file('fit_ace')['protocols']['fast']['pacemaker']['settings']
    settings = validate_settings({**fast, 'seed': seed, 'maxiter': 5})
    folder.mkdir()
    frames.to_pickle(folder / 'train.pckl.gzip', compression='gzip')
    (folder / 'input.yaml').write_text(render_input_yaml(settings, ['Fe', 'Na', 'O', 'P'], test_filename=None))
    return subprocess.Popen([executable, 'input.yaml'], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip


@pytest.fixture(scope='module')
def ace_committee(aiida_profile, reference_test_set_path, tmp_path_factory):
    """Two members of one kind: the same tiny ACE basis fitted by pacemaker on two seeded 8-frame subsets of the
    DFT test set (run side by side)."""
    import pandas as pd

    from aiida_glassml.data.ace_potential import AcePotentialData

    frames = pd.read_pickle(reference_test_set_path, compression='gzip')
    root = tmp_path_factory.mktemp('committee')
    jobs = {f'member_{m:02d}': (root / f'm{m}', fit_small_ace(root / f'm{m}', frames.sample(8, random_state=m), 7 + m))
            for m in range(2)}  # fmt: skip
    members = {}
    for label, (folder, job) in jobs.items():
        _, stderr = job.communicate(timeout=600)
        assert job.returncode == 0, stderr.decode()[-2000:]
        members[label] = AcePotentialData.get_or_create(folder / 'output_potential.yaml')
    return members


def _builder(code, structure, protocol: MDProtocol, **inputs):
    builder = AseMDCalculation.get_builder()
    builder.code = code
    builder.structure = structure
    builder.protocol = orm.Dict(protocol.to_dict())
    for key, value in inputs.items():
        builder[key] = value
    return builder


@pytest.mark.slow
def test_committee_md_records_sigma_and_saves_candidates(python_code, ace_committee, nafepo4_cell):
    """112 atoms, 30 steps at 1500 K driven by the mean of two tiny ACE fits: σ_F,max every 3 steps, the frames above
    sigma_lo in `extrapolative_trajectory`, σ on the trajectory frames, and the last value matches pyace directly."""
    from pyace import PyACECalculator

    tracking = ForceDeviationTracking(interval=3, sigma_lo=0.01, sigma_hi=1.0e4)
    protocol = MDProtocol(stages=[NVT(1500.0, 0.03)], timestep=0.001, thermo_interval=10, dump_interval=10, seed=5,
                          force_deviation=tracking)  # fmt: skip
    builder = _builder(python_code, orm.StructureData(ase=nafepo4_cell), protocol, committee=ace_committee)
    results, node = run_get_node(builder)
    assert node.exit_status == 0, node.exit_message
    sigma = results['force_deviation']
    assert sigma.get_array('step').tolist() == list(range(0, 31, 3))
    values = sigma.get_array('max_force_deviation')
    assert np.all(values > 0) and results['results']['max_force_deviation'] == pytest.approx(values.max())
    candidates = results['extrapolative_trajectory']
    assert candidates.numsteps == results['results']['n_extrapolative_frames'] == int((values > 0.01).sum())
    assert np.all(candidates.get_array('max_force_deviation') > 0.01)
    assert results['trajectory'].get_array('max_force_deviation').shape == (results['trajectory'].numsteps,)
    assert 'gamma' not in results
    # the recorded σ of the last step is what the two members give on the final structure
    final = results['structure'].get_ase()
    forces = []
    for member in ace_committee.values():
        copy = final.copy()
        copy.calc = PyACECalculator(str(member._cached_files()['yaml']))
        forces.append(copy.get_forces())
    assert values[-1] == pytest.approx(force_deviation(forces).max(), rel=1e-6)


@pytest.mark.slow
def test_committee_md_halts_above_sigma_hi(python_code, ace_committee, nafepo4_cell):
    tracking = ForceDeviationTracking(interval=1, sigma_lo=1.0e-4, sigma_hi=1.0e-3)
    protocol = MDProtocol(stages=[NVT(1500.0, 0.02)], timestep=0.001, thermo_interval=5, dump_interval=0, seed=5,
                          force_deviation=tracking)  # fmt: skip
    results, node = run_get_node(_builder(python_code, orm.StructureData(ase=nafepo4_cell), protocol,
                                          committee=ace_committee))  # fmt: skip
    assert node.exit_status == AseMDCalculation.exit_codes.ERROR_FORCE_DEVIATION_HALT.status == 351
    assert 'sigma_hi 0.001' in node.exit_message
    assert results['results']['stop_reason'] == 'force_deviation_halt'
    assert results['extrapolative_trajectory'].numsteps >= 1 and 'thermo' in results


def test_bad_committees_are_refused_before_anything_is_stored(python_code, ace_committee, nafepo4_cell, node_count):
    from aiida_glassml.data.mlip_potential import MlipPotentialData

    structure = orm.StructureData(ase=nafepo4_cell)
    tracked = MDProtocol(stages=[NVT(300.0, 0.01)], force_deviation=ForceDeviationTracking())
    narrow = MlipPotentialData(calculator='chgnet.model.dynamics:CHGNetCalculator', elements=['Na', 'P', 'O'])
    wide = MlipPotentialData(calculator='chgnet.model.dynamics:CHGNetCalculator', elements=['Na', 'Fe', 'P', 'O'])
    member = ace_committee['member_00']
    cases = [
        ({'committee': {'a': narrow, 'b': wide}}, tracked, 'mixes element sets'),
        ({'committee': {'a': member, 'b': wide}}, tracked, 'mixes potential kinds'),
        ({'committee': {'a': member}}, tracked, 'at least two potentials'),
        ({'committee': ace_committee, 'potential': member}, tracked, 'give exactly one of'),
        ({'potential': member}, tracked, 'tracks the force deviation of a committee'),
        ({'committee': ace_committee}, MDProtocol(stages=[NVT(300.0, 0.01)], gamma=GammaTracking()), 'tracks gamma'),
    ]
    for inputs, protocol, match in cases:
        before = node_count()
        with pytest.raises(ValueError, match=match):
            run_get_node(_builder(python_code, structure, protocol, **inputs))
        assert node_count() == before, match
    with pytest.raises(ValueError, match='sigma_lo .* must be below sigma_hi'):
        MDProtocol(stages=[NVT(300.0, 0.01)], force_deviation=ForceDeviationTracking(sigma_lo=5.0, sigma_hi=1.0)).validate()

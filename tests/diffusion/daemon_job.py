"""Run inside a PostgreSQL + RabbitMQ profile: submit a small LAMMPS diffusion series (BMP, ``fast``: 2 temperatures
× 1 heating variant × 1 glass) to the daemon, kill the whole daemon (SIGKILL, circus and workers) while the MD runs
are in flight, start it again, and wait for the series. Prints one JSON line with what the test checks. Called by
``test_diffusion_daemon.py`` in a subprocess."""

import importlib.util
import json
import pathlib
import sys
import time

from aiida import load_profile, orm
from aiida.engine import submit
from aiida.engine.daemon.client import get_daemon_client

profile = load_profile(sys.argv[1])

from aiida_glassml.data.classical_potential import ClassicalPotentialData  # noqa: E402
from aiida_glassml.workflows.diffusion import DiffusionWorkChain  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from daemon_tools import kill_daemon, report_unfinished, restart_after_crash, stop_daemon  # noqa: E402

spec = importlib.util.spec_from_file_location('_glassml_diffusion_conftest', pathlib.Path(__file__).with_name('conftest.py'))
conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conftest)

TEMPERATURES = [2000.0, 2500.0]
builder = DiffusionWorkChain.get_builder_from_protocol(
    orm.load_code('lammps@localhost'), {'replica_0': conftest.nafepo4_structure(7)},
    potential=ClassicalPotentialData.from_library('bmp'), engine='lammps', protocol='fast',
    analysis_code=orm.load_code('glassml-python@localhost'), options={'withmpi': False},
    # a longer production than `fast` (4 ps, ~20 s of LAMMPS) leaves time to kill the daemon while the MD runs
    overrides={'temperatures': TEMPERATURES, 'variants': ['nvt'], 'schedule': {'production_time': 4.0},
               'series': {'arrhenius_t_min': 2000.0, 'conductivity_temperature': 2000.0,
                          'mobility_temperature': 2000.0}},
)  # fmt: skip

client = get_daemon_client(profile.name)


def md_calcs(node) -> list:
    return [c for c in node.called_descendants if c.process_label == 'LammpsMDCalculation']


client.start_daemon(number_workers=1, timeout=120)
killed, in_flight = 0, []
try:
    series = submit(builder)
    deadline = time.time() + 600
    # kill while the MD jobs run: every MD CalcJob submitted, none finished
    while time.time() < deadline and not killed and not series.is_terminated:
        calcs = md_calcs(series)
        if len(calcs) == len(TEMPERATURES) and all(c.get_job_id() and not c.is_terminated for c in calcs):
            in_flight = sorted(c.pk for c in calcs)
            killed = kill_daemon(client, spare_jobs=True)
            series = restart_after_crash(client, profile.name, series)
        time.sleep(0.5)
    while not series.is_terminated and time.time() < deadline:
        time.sleep(2)
finally:
    stop_daemon(client)
    series = orm.load_node(series.pk)
    if not series.is_terminated:
        report_unfinished(series)

md_runs = [c for c in series.called if c.process_label == 'LammpsMDBaseWorkChain']
analyses = [c for c in series.called if c.process_label == 'TrajectoryAnalysisCalculation']


def link_label(node) -> str:
    return node.base.links.get_incoming(node_class=orm.WorkflowNode).first().link_label


print(json.dumps({
    'killed': killed, 'in_flight': in_flight, 'state': series.process_state.value, 'exit_status': series.exit_status,
    'exit_message': series.exit_message,
    'md_labels': sorted(link_label(c) for c in md_runs),
    'md_finished_ok': [c.is_finished_ok for c in md_runs],
    'calcs_per_run': {link_label(c): len(md_calcs(c)) for c in md_runs},
    'calc_pks': sorted(c.pk for run in md_runs for c in md_calcs(run)),
    'calcs_finished_ok': [c.is_finished_ok for run in md_runs for c in md_calcs(run)],
    'job_ids': sorted(c.get_job_id() for run in md_runs for c in md_calcs(run)),
    'analysis_labels': sorted(link_label(c) for c in analyses),
    'analyses_finished_ok': [c.is_finished_ok for c in analyses],
    'diffusion': sorted(series.outputs.diffusion.get_dict()) if 'diffusion' in series.outputs else None,
    'analysed_runs': sorted(series.outputs.analyses) if 'analyses' in series.outputs else None,
}))

"""Run inside a PostgreSQL + RabbitMQ profile: submit a small active-learning loop to the daemon, kill the whole
daemon (SIGKILL, circus and workers; the MD jobs run on) while the iteration is exploring, start it again, and wait
for the loop. Prints one JSON line with what the test checks. Called by ``test_active_learning_daemon.py`` in a
subprocess. CI-sized: 20-atom cells and short fits; the crash and its recovery are what is tested."""

import json
import os
import pathlib
import sys
import time

from aiida import load_profile, orm
from aiida.engine import run_get_node, submit
from aiida.engine.daemon.client import get_daemon_client

profile = load_profile(sys.argv[1])
data_dir = sys.argv[2]

from aiida_glassml.data.ace_potential import AcePotentialData  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from daemon_tools import kill_daemon, report_unfinished, restart_after_crash, stop_daemon  # noqa: E402
from aiida_glassml.structures import generate_random_structure  # noqa: E402
from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain  # noqa: E402
from aiida_glassml.workflows.label import LabelWorkChain  # noqa: E402

NAPO3 = {'units': ['NaPO3'], 'fractions': [1.0]}
python = orm.load_code('glassml-python@localhost')
teacher = AcePotentialData.get_or_create(os.path.join(data_dir, 'output_potential.yaml'))


def labels(seeds, prefix):
    structures = {}
    for seed in seeds:
        atoms = generate_random_structure(NAPO3, seed, {'n_atoms': 20}).atoms
        atoms.rattle(0.05, seed=seed)
        structures[f'{prefix}{seed}'] = orm.StructureData(ase=atoms)
    builder = LabelWorkChain.get_builder_from_protocol(python, structures, engine='potential', mode='single_point',
                                                       protocol='fast', potential=teacher)  # fmt: skip
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return results['training_set']


start, test = labels(range(101, 109), 'start'), labels(range(201, 203), 'test')
start_frames = start.n_frames  # read now: the crash recovery reconnects, and older nodes go stale
builder = ActiveLearningWorkChain.get_builder_from_protocol(
    start, {'NaPO3': NAPO3}, test_set=test, md_code=python, label_code=python,
    pacemaker_code=orm.load_code('pacemaker@localhost'), label_engine='potential', label_potential=teacher,
    protocol='fast', overrides={
        'settings': {'max_iterations': 1}, 'stability': {'enabled': False},
        # 20-atom cells, 10-iteration fits without parity plots: the potential is not under test; the exploration
        # keeps the fast protocol's length, so the kill still lands while it runs
        'exploration': {'packings_per_composition': 2, 'structure_settings': {'n_atoms': 20}, 'md': {'gamma_lo': 1.1}},
        'fit': {'make_plots': False, 'pacemaker': {'settings': {'maxiter': 10}}},
    },
)  # fmt: skip

client = get_daemon_client(profile.name)


client.start_daemon(number_workers=1, timeout=120)
killed = 0
try:
    loop = submit(builder)
    deadline = time.time() + 600
    # kill once both exploration runs were launched (each has a job id): a kill between the store of a child and its
    # checkpoint is the mixin's other case (the child is sealed and launched again), which the test would not pin down
    while time.time() < deadline and not killed and not loop.is_terminated:
        iterations = [c for c in loop.called if c.process_label == 'ActiveLearningIterationWorkChain']
        runs = [c for c in iterations[0].called if c.process_label == 'AseMDCalculation'] if iterations else []
        if len(runs) == 2 and all(c.get_job_id() or c.is_terminated for c in runs):
            killed = kill_daemon(client, spare_jobs=True)  # the MD jobs run on, as on a cluster
            loop = restart_after_crash(client, profile.name, loop)
        time.sleep(0.5)
    while not loop.is_terminated and time.time() < deadline:
        time.sleep(0.5)
finally:
    stop_daemon(client)
    loop = orm.load_node(loop.pk)
    if not loop.is_terminated:
        report_unfinished(loop)

iteration = [c for c in loop.called if c.process_label == 'ActiveLearningIterationWorkChain'][0]
label_chains = [c for c in iteration.called if c.process_label == 'LabelWorkChain']
label_calcs = [c for chain in label_chains for c in chain.called_descendants if isinstance(c, orm.CalcJobNode)]
md_runs = [c for c in iteration.called if c.process_label == 'AseMDCalculation']
selection = iteration.outputs.selection.get_dict() if 'selection' in iteration.outputs else {}
new_frames = iteration.outputs.labels.get_frameset() if 'labels' in iteration.outputs else None
print(json.dumps({
    'killed': killed, 'state': loop.process_state.value, 'exit_status': loop.exit_status,
    'stop': loop.outputs.report['stop']['stop_reason'] if 'report' in loop.outputs else None,
    'md_runs': len(md_runs), 'md_states': [[c.process_state.value, c.exception] for c in md_runs],
    'md_labels': sorted(c.base.links.get_incoming().first().link_label for c in md_runs),
    'label_chains': len(label_chains), 'label_calcs': len(label_calcs),
    'n_selected': selection.get('n_selected'), 'n_labelled': new_frames.n_frames if new_frames else None,
    'unique_labelled': len(set(new_frames.frame_hashes())) if new_frames else None,
    'start_frames': start_frames,
    'train_frames': loop.outputs.train_set.n_frames if 'train_set' in loop.outputs else None,
}))

"""Run inside a profile on PostgreSQL + a broker: start the daemon, submit a work chain, wait, check, stop.

Called by ``test_services.py`` in a subprocess so that the test's own temporary profile stays untouched."""

import sys
import time

import numpy as np
from aiida import load_profile
from aiida.engine import submit
from aiida.engine.daemon.client import get_daemon_client
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_glassml.data import TrainingSetData
from aiida_glassml.workflows.training_set import MergeTrainingSetsWorkChain

profile = load_profile(sys.argv[1])
assert profile.storage_backend == 'core.psql_dos', profile.storage_backend
assert profile.process_control_backend == sys.argv[2], profile.process_control_backend


def frames(seeds):
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        atoms = Atoms('NaPO3', positions=rng.random((5, 3)) * 6, cell=[6, 6, 6], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-20.0 - seed, forces=rng.normal(size=(5, 3)))
        out.append(atoms)
    return TrainingSetData.from_atoms(out).store()


client = get_daemon_client(profile.name)
client.start_daemon(number_workers=1, timeout=120)
try:
    node = submit(MergeTrainingSetsWorkChain, training_sets={'a': frames([0, 1, 2]), 'b': frames([2, 3])})
    deadline = time.time() + 180
    while not node.is_terminated and time.time() < deadline:
        time.sleep(1)
    assert node.is_finished_ok, f'process {node.pk} state {node.process_state} exit {node.exit_status}'
    assert node.outputs.training_set.n_frames == 4
    assert node.outputs.report['n_duplicates_dropped'] == 1
    print(f'OK pk={node.pk} daemon-ran={node.computer is None}')
finally:
    # Generous timeouts: on a loaded 2-core machine circus answers slowly, and a stop that times out is retried.
    for attempt in range(3):
        try:
            client.stop_daemon(wait=True, timeout=60)
            break
        except Exception:  # noqa: BLE001 - DaemonTimeoutException or a not-yet-answering circus
            time.sleep(5)

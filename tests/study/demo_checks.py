"""Run in a subprocess against a profile (``python demo_checks.py PROFILE STUDY_UUID``): prints JSON with what the demo
test compares between the demo's profile and the profile its archive was imported into."""

import hashlib
import json
import sys

from aiida import load_profile, orm

load_profile(sys.argv[1], allow_switch=True)
from aiida_glassml.tools.provenance import trace  # noqa: E402

study = orm.load_node(sys.argv[2])


def cp2k_under(process) -> list[str]:
    return sorted(n.uuid for n in process.called_descendants
                  if isinstance(n, orm.CalcJobNode) and n.process_type == 'aiida.calculations:cp2k')  # fmt: skip


def file_hashes(node) -> dict:
    repository = node.base.repository
    hashes = {}
    for folder, _, files in repository.walk():
        for name in files:
            path = str(folder / name)
            hashes[path] = hashlib.sha256(repository.get_object_content(path, mode='rb')).hexdigest()
    return hashes


calls = {link.link_label: link.node for link in study.base.links.get_outgoing().all() if link.link_type.value.startswith('call')}
loop = calls['active_learning']
iterations = sorted((n for n in loop.called if n.process_label == 'ActiveLearningIterationWorkChain'), key=lambda n: n.ctime)
figure = study.outputs.figures.densities
traced = trace(figure)
nodes = orm.QueryBuilder().append(orm.Node, project=['uuid']).all(flat=True)
print(json.dumps({
    'initial_dataset_cp2k': cp2k_under(calls['initial_dataset']),
    'iteration_cp2k': [cp2k_under(n) for n in iterations],
    'figure': figure.uuid,
    'trace': traced.to_dict(),
    'traced_uuids': sorted(c['uuid'] for c in traced.to_dict()['labelling_calculations']),
    'hashes': {uuid: file_hashes(orm.load_node(uuid)) for uuid in nodes},
}))

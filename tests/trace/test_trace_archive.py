"""The export round trip: ``aiida-glassml export`` of a figure, then an empty storage, then the import gives back
the same nodes, the same files and the same trace. It resets the storage, so it has a module (and graph) of its own."""

from __future__ import annotations

import hashlib
import re

from aiida import orm
from click.testing import CliRunner

from aiida_glassml.cli import cli
from aiida_glassml.tools.provenance import trace


def repository_hashes(node: orm.Node) -> dict[str, str]:
    """Path -> sha256 of every file in the node's repository."""
    hashes = {}
    for root, _folders, names in node.base.repository.walk():
        for name in names:
            path = str(root / name)
            hashes[path] = hashlib.sha256(node.base.repository.get_object_content(path, mode='rb')).hexdigest()
    return hashes


def without_pks(result) -> dict:
    """A trace as it must survive an import: PKs are renumbered there, UUIDs, counts and the path's shape are not."""
    data = result.to_dict()
    return {
        'node': {key: value for key, value in data['node'].items() if key != 'pk'},
        'n_start': len(data['start']),
        'labelling_calculations': [{key: value for key, value in calc.items() if key != 'pk'}
                                   for calc in data['labelling_calculations']],
        'counts': data['counts'],
        'path': [re.sub(r'<\d+>', '<>', step) for step in data['path']],
    }  # fmt: skip


def all_uuids() -> set[str]:
    return set(orm.QueryBuilder().append(orm.Node, project='uuid').all(flat=True))


def test_export_reset_import_gives_back_nodes_files_and_trace(study, aiida_profile, tmp_path):
    from aiida.tools.archive import import_archive
    from aiida.tools.archive.abstract import get_format

    archive = tmp_path / 'figure.aiida'
    result = CliRunner().invoke(cli, ['export', study.figure.uuid, str(archive)])
    assert result.exit_code == 0, result.output
    with get_format().open(archive, 'r') as reader:
        exported = set(reader.querybuilder().append(orm.Node, project='uuid').all(flat=True))
    assert f'Wrote {len(exported)} nodes' in result.stdout
    figure_uuid = study.figure.uuid
    expected_trace = without_pks(trace(study.figure))
    hashes = {uuid: repository_hashes(orm.load_node(uuid)) for uuid in exported}
    assert hashes[figure_uuid] == {'energy_parity.png': hashlib.sha256(study.figure.get_content('rb')).hexdigest()}
    assert expected_trace['counts']['labelled_frames'] == 3

    aiida_profile.reset_storage()
    assert all_uuids() == set()
    import_archive(archive)

    assert all_uuids() == exported
    assert {uuid: repository_hashes(orm.load_node(uuid)) for uuid in exported} == hashes
    assert without_pks(trace(orm.load_node(figure_uuid))) == expected_trace

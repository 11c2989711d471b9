"""`aiida-glassml maintenance seal`: a calcfunction left `running` by a killed worker blocks `verdi archive create`
of the work chain that called it (issue 14, item 1); sealing it as excepted makes the archive possible again, while
processes that can still continue (they have a checkpoint) are left alone."""

import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ProcessState
from aiida.tools.archive import create_archive
from click.testing import CliRunner

from aiida_glassml.cli import cli
from aiida_glassml.tools.maintenance import ORPHAN_REASON, find_orphans

pytestmark = pytest.mark.usefixtures('aiida_profile_clean')


def crashed_analysis():
    """A finished work chain whose analysis calcfunction never ended (its worker was SIGKILLed), as in the report."""
    workchain = orm.WorkChainNode()
    workchain.set_process_state(ProcessState.FINISHED)
    workchain.set_exit_status(0)
    workchain.store()
    orphan = orm.CalcFunctionNode()
    orphan.base.links.add_incoming(workchain, link_type=LinkType.CALL_CALC, link_label='analyse_network')
    orphan.store()
    orphan.set_process_state(ProcessState.RUNNING)
    workchain.seal()
    return workchain, orphan


def seal(profile, *args):
    result = CliRunner().invoke(cli, ['-p', profile.name, 'maintenance', 'seal', *args])
    assert result.exit_code == 0, result.output
    return result


def test_seal_makes_the_profile_archivable_and_spares_live_processes(aiida_profile, tmp_path):
    workchain, orphan = crashed_analysis()
    live = orm.WorkChainNode().store()
    live.set_process_state(ProcessState.WAITING)
    live.set_checkpoint('a checkpoint: `verdi process repair` can continue it')
    with pytest.raises(Exception, match='sealed'):
        create_archive([workchain], filename=tmp_path / 'before.aiida')
    assert [n.pk for n in find_orphans()] == [orphan.pk]

    dry = seal(aiida_profile, '--dry-run')
    assert f'<{orphan.pk}> running, no checkpoint' in dry.output and 'would be sealed' in dry.output
    assert not orm.load_node(orphan.pk).is_sealed

    result = seal(aiida_profile, '--force')
    assert 'sealed 1 process node(s)' in result.output
    orphan = orm.load_node(orphan.pk)
    assert orphan.is_sealed and orphan.is_excepted and orphan.exception == ORPHAN_REASON
    live = orm.load_node(live.pk)
    assert not live.is_sealed and live.process_state == ProcessState.WAITING
    create_archive([workchain], filename=tmp_path / 'after.aiida')
    assert (tmp_path / 'after.aiida').stat().st_size > 0
    again = seal(aiida_profile, '--force')
    assert 'no orphaned process nodes' in again.output

"""``aiida-glassml maintenance seal``: seal the process nodes that a daemon crash left running forever, so that the
profile can be archived again (``verdi archive create`` refuses unsealed processes)."""

from __future__ import annotations

import click
from aiida.cmdline.utils import decorators, echo

from . import cli
from .utils import fail


@cli.group('maintenance')
def cmd_maintenance():
    """Repairs for a profile after crashes."""


def _daemon_running() -> bool:
    from aiida.engine.daemon.client import get_daemon_client

    try:
        return get_daemon_client().is_daemon_running
    except Exception:  # noqa: BLE001 - a profile without a broker has no daemon
        return False


@cmd_maintenance.command('seal')
@click.option('--dry-run', is_flag=True, help='Only list what would be sealed.')
@click.option('-f', '--force', is_flag=True, help='Do not ask for confirmation.')
@decorators.with_dbenv()
def cmd_seal(dry_run, force):
    """Mark excepted and seal the process nodes that can never finish: active without a checkpoint (a calcfunction
    whose worker died) or terminated but unsealed. Needs the daemon stopped; run `verdi process repair` afterwards for
    processes that only lost their broker task."""
    from aiida_glassml.tools.maintenance import ORPHAN_REASON, find_orphans, seal_as_excepted

    if _daemon_running():
        fail('the daemon is running, and its workers may still own these processes; stop it first with '
             '`verdi daemon stop`.')  # fmt: skip
    orphans = find_orphans()
    if not orphans:
        echo.echo_success('no orphaned process nodes: every process can finish or is sealed.')
        return
    for node in orphans:
        state = node.process_state.value if node.process_state else 'unknown'
        echo.echo(f'{node.process_label}<{node.pk}> {state}, no checkpoint' if not node.is_terminated
                  else f'{node.process_label}<{node.pk}> {state}, unsealed')  # fmt: skip
    if dry_run:
        echo.echo_report(f'{len(orphans)} process node(s) would be sealed (dry run).')
        return
    if not force:
        click.confirm('Nothing may run in the foreground on this profile either. Seal these?', abort=True)
    for node in orphans:
        seal_as_excepted(node, ORPHAN_REASON)
    echo.echo_success(f'sealed {len(orphans)} process node(s); `verdi archive create` accepts them now.')


@cmd_maintenance.command('clear-broker')
@decorators.with_dbenv()
def cmd_clear_broker():
    """After a daemon crash on a ZeroMQ profile: remove the dead broker's socket, PID and status files (the task queue
    stays), so the restarted daemon's workers connect to the new broker. Needs the daemon stopped."""
    from aiida_glassml.tools.maintenance import clear_stale_broker_files

    if _daemon_running():
        fail('the daemon is running; stop it first with `verdi daemon stop`.')
    removed = clear_stale_broker_files()
    for path in removed:
        echo.echo(f'removed {path}')
    echo.echo_success(f'{len(removed)} stale broker file(s) removed' if removed else 'no stale broker files')

"""``aiida-glassml study run|status|show``: a glass study from a recipe, through the daemon or in the foreground."""

from __future__ import annotations

import pathlib
import time

import click

from . import cli
from .utils import echo_json, fail


@cli.group('study')
def study():
    """Run and follow whole glass studies (GlassStudyWorkChain) from YAML recipes (workflows/*.yaml)."""


def _load_study(identifier: str):
    from aiida import orm
    from aiida.cmdline.utils.decorators import load_backend_if_not_loaded
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    load_backend_if_not_loaded()
    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError):
        fail(f'no node {identifier!r} in this profile; give the PK or UUID of a study (see `verdi process list`).')
    if getattr(node, 'process_type', None) != 'aiida.workflows:glassml.study':
        fail(f'node {identifier} is a {type(node).__name__}, not a GlassStudyWorkChain; give a study PK.')
    return node


def progress(node) -> dict:
    """Stage, and the processes below the study by state. A child that exited non-zero is not necessarily a failure of
    the study: restart work chains retry failed calculations, and an active-learning loop that stops at
    max_iterations (401) still hands on its potential; the study's own exit status and summary say what failed."""
    from aiida_glassml.tools.maintenance import paused_reason

    descendants = node.called_descendants
    states: dict[str, int] = {}
    running = []
    failed = []
    paused = []
    for child in descendants:
        reason = paused_reason(child)
        if reason is not None and not child.called:  # the job that waits, not the work chains above it
            paused.append(f'{child.process_label}<{child.pk}>: {reason}')
        state = child.process_state.value if child.process_state else 'created'
        if child.is_finished and not child.is_finished_ok:
            state = 'exited non-zero'
            failed.append(f'{child.process_label}<{child.pk}> exit {child.exit_status}: {child.exit_message}')
        states[state] = states.get(state, 0) + 1
        if not child.is_terminated and not child.called:
            running.append(f'{child.process_label}<{child.pk}>')
    state = node.process_state.value if node.process_state else 'created'
    return {'pk': node.pk, 'uuid': node.uuid, 'study': node.label, 'state': state, 'exit_status': node.exit_status,
            'stage': node.base.extras.get('study_stage', 'queued'), 'processes': states, 'running': sorted(running),
            'nonzero_exit': failed, 'paused': paused,
            'elapsed_s': round(time.time() - node.ctime.timestamp())}  # fmt: skip


def _progress_line(info: dict) -> str:
    counts = ', '.join(f'{n} {state}' for state, n in sorted(info['processes'].items())) or 'none yet'
    running = '; running: ' + ', '.join(info['running'][:4]) + ('…' if len(info['running']) > 4 else '')
    return (f'[{info["elapsed_s"] // 60:3d} min] study<{info["pk"]}> {info["state"]}, stage {info["stage"]}; '
            f'processes: {counts}{running if info["running"] else ""}')  # fmt: skip


@study.command('run')
@click.argument('recipe_file', type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option('--run', 'foreground', is_flag=True, help='Run in this process instead of submitting to the daemon.')
@click.option('--wait', is_flag=True, help='After submitting, wait and show progress, then the summary.')
@click.option('--start-daemon', is_flag=True, help='Start the daemon of this profile if it is not running.')
@click.option('--output', type=click.Path(file_okay=False, path_type=pathlib.Path), default=None,
              help='With --wait or --run: write the summary table and the figures to this folder.')
@click.option('--archive', type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
              help='With --wait or --run: write an AiiDA archive of the study to this file.')
@click.option('--poll', type=click.FloatRange(min=1), default=15.0, show_default=True, help='Seconds between checks.')
def run(recipe_file, foreground, wait, start_daemon, output, archive, poll):
    """Validate RECIPE_FILE (a dry run of every stage), then submit the study to the daemon (or --run it here)."""
    from aiida.cmdline.utils.decorators import load_backend_if_not_loaded

    from aiida_glassml.common.recipe import RecipeError

    load_backend_if_not_loaded()
    for folder, option in ((output.parent if output else None, '--output'), (archive.parent if archive else None, '--archive')):
        if folder is not None and not folder.is_dir():
            fail(f'the folder {folder} does not exist; create it or choose another {option}.')
    if archive is not None and archive.exists():
        fail(f'{archive} exists; remove it or choose another --archive file.')
    from aiida_glassml.workflows.study import build_study

    try:
        builder = build_study(str(recipe_file))
    except RecipeError as exc:
        fail(str(exc))
    if foreground:
        from aiida.engine import run_get_node

        click.echo(f'running study {builder.metadata.label!r} in this process (Ctrl-C stops it)')
        _, node = run_get_node(builder)
    else:
        _check_daemon(start_daemon)
        from aiida.engine import submit

        node = submit(builder)
        click.echo(f'Submitted study {builder.metadata.label!r}: GlassStudyWorkChain<{node.pk}>. Follow it with '
                   f'`aiida-glassml study status {node.pk}`; results with `aiida-glassml study show {node.pk}`.')  # fmt: skip
        if not wait:
            return
        last, shown = None, set()
        while not node.is_terminated:
            info = progress(node)
            line = _progress_line(info)
            if line.split('] ', 1)[1] != last:
                click.echo(line)
                last = line.split('] ', 1)[1]
            for paused in sorted(set(info['paused']) - shown):  # the study waits on it: say so at once
                click.echo(f'  paused: {paused} (see `aiida-glassml study status {node.pk}`)')
                shown.add(paused)
            time.sleep(poll)
    _finish(node, output, archive)


def _check_daemon(start: bool) -> None:
    from aiida.engine.daemon.client import get_daemon_client

    client = get_daemon_client()
    if client.is_daemon_running:
        return
    if not start:
        fail('the daemon of this profile is not running, so a submitted study would wait forever; start it with '
             '`verdi daemon start` (or pass --start-daemon), or run the study here with --run.')  # fmt: skip
    client.start_daemon(number_workers=1)
    click.echo('started the daemon (1 worker)')


def _finish(node, output: pathlib.Path | None, archive: pathlib.Path | None) -> None:
    click.echo(_progress_line(progress(node)))
    _show(node, output)
    if archive is not None:
        from aiida_glassml.cli.cmd_trace import write_archive

        count = write_archive(node, archive)
        click.echo(f'archive: {archive} ({count} nodes; `verdi archive import {archive.name}` elsewhere)')
    if not node.is_finished_ok:
        fail(f'the study ended with exit status {node.exit_status}: {node.exit_message}; see '
             f'`verdi process report {node.pk}`.')  # fmt: skip


def _show(node, output: pathlib.Path | None) -> None:
    outputs = node.outputs
    if 'summary_table' in outputs:
        click.echo(outputs.summary_table.get_content())
    if output is not None:
        output.mkdir(exist_ok=True)
    if 'potential' in outputs:
        potential = outputs.potential
        click.echo(f'potential: {type(potential).__name__}<{potential.pk}> (elements {" ".join(potential.elements)})')
    if 'figures' in outputs:
        click.echo('figures:')
        for name, figure in sorted(outputs.figures.items()):
            where = ''
            if output is not None:
                path = output / f'{name}.png'
                path.write_bytes(figure.get_content(mode='rb'))
                where = f'  {path}'
            click.echo(f'  {name:<40} SinglefileData<{figure.pk}>{where}')
    if output is not None and 'summary_table' in outputs:
        (output / 'summary.md').write_text(outputs.summary_table.get_content(), encoding='utf-8')
        click.echo(f'summary table: {output / "summary.md"}')
    click.echo(f'trace any of them back to the DFT calculations with `aiida-glassml trace PK`')


@study.command('status')
@click.argument('study_id', metavar='STUDY')
@click.option('--json', 'as_json', is_flag=True, help='Print as JSON.')
def status(study_id, as_json):
    """Progress of STUDY (PK or UUID): stage, and its processes by state."""
    info = progress(_load_study(study_id))
    if as_json:
        echo_json(info)
        return
    click.echo(_progress_line(info))
    for line in info['nonzero_exit']:
        click.echo(f'  exited non-zero: {line}')
    for line in info['paused']:
        click.echo(f'  paused: {line}')
    if info['paused']:
        click.echo('  a paused job waits for you: fix what its line names (e.g. the `queue_name` or `account` option in '
                   'the recipe\'s overrides) and run the study again, after `verdi process kill` of this one; a passing '
                   'problem (a cluster that was down) clears with `verdi process play`.')  # fmt: skip


@study.command('show')
@click.argument('study_id', metavar='STUDY')
@click.option('--output', type=click.Path(file_okay=False, path_type=pathlib.Path), default=None,
              help='Also write the summary table and the figures to this folder.')
@click.option('--json', 'as_json', is_flag=True, help='Print the summary Dict as JSON.')
def show(study_id, output, as_json):
    """Summary of a finished STUDY: the table, the potential and the figures (with PKs)."""
    node = _load_study(study_id)
    if output is not None and not output.parent.is_dir():
        fail(f'the folder {output.parent} does not exist; create it or choose another --output.')
    if 'summary' not in node.outputs:
        fail(f'study<{node.pk}> has no summary yet (stage {node.base.extras.get("study_stage", "queued")}); follow it '
             f'with `aiida-glassml study status {node.pk}`.')  # fmt: skip
    if as_json:
        echo_json(node.outputs.summary.get_dict())
        return
    _show(node, output)

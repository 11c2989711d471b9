"""``aiida-glassml active-learning show LOOP``: the iteration table of a finished or running active-learning loop."""

from __future__ import annotations

import click

from . import cli
from .utils import echo_json, fail


@cli.group('active-learning')
def active_learning():
    """Inspect batch active-learning loops (ActiveLearningWorkChain)."""


def iteration_rows(loop) -> list[dict]:
    """One row per iteration: the report of each finished iteration, the stage of a running one."""
    from aiida_glassml.workflows.active_learning import ActiveLearningIterationWorkChain

    rows = []
    children = [c for c in loop.called if c.process_class is ActiveLearningIterationWorkChain]
    for child in sorted(children, key=lambda c: c.ctime):
        if 'report' in child.outputs:
            rows.append(child.outputs.report.get_dict())
            continue
        iteration = child.inputs.iteration.value
        running = [c for c in child.called if not c.is_terminated]
        stage = ', '.join(sorted({c.process_label for c in running})) or (child.process_status or 'waiting')
        state = child.process_state.value if child.process_state else 'unknown'
        rows.append({'iteration': iteration, 'outcome': f'{state}: {stage}'[:60]})
    return rows


@active_learning.command('show')
@click.argument('loop')
@click.option('--json', 'as_json', is_flag=True, help='Print the rows as JSON.')
def show(loop, as_json):
    """Print the iteration table of LOOP (PK or UUID of an ActiveLearningWorkChain), finished or running."""
    from aiida.cmdline.utils.decorators import load_backend_if_not_loaded
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida.orm import load_node

    from aiida_glassml.fitting.active_learning import STOP_REASONS, iteration_table
    from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain

    load_backend_if_not_loaded()
    try:
        node = load_node(loop)
    except (NotExistent, MultipleObjectsError, ValueError) as exc:
        fail(f'LOOP `{loop}` is not a node PK or UUID of this profile ({exc}).')
    if getattr(node, 'process_class', None) is not ActiveLearningWorkChain:
        fail(f'node {node.pk} is a {type(node).__name__} ({getattr(node, "process_label", "")}), not an '
             'ActiveLearningWorkChain; give the PK of the loop (`verdi process list -a -p 1`).')
    rows = iteration_rows(node)
    stop = node.outputs.report.get_dict()['stop'] if 'report' in node.outputs else None
    if as_json:
        echo_json({'loop': node.pk, 'state': node.process_state.value, 'exit_status': node.exit_status,
                   'stop': stop, 'iterations': rows})  # fmt: skip
        return
    click.echo(f'ActiveLearningWorkChain<{node.pk}>: {node.process_state.value}'
               + (f', exit status {node.exit_status}' if node.is_terminated else ''))
    click.echo(iteration_table(rows) if rows else 'no iteration has started yet')
    if stop:
        click.echo(f'stop reason: {stop["stop_reason"]} ({STOP_REASONS.get(stop["stop_reason"], "")})')
    click.echo('forces in meV/Å, energies in meV/atom (test: the fixed held-out set)')

"""``aiida-glassml setup`` and ``aiida-glassml status``."""

import click

from . import cli
from .utils import fail


@cli.command('setup')
@click.option('--storage', type=click.Choice(['sqlite', 'psql']), default='sqlite', show_default=True,
              help='sqlite: embedded core.sqlite_dos (laptop). psql: core.psql_dos on PostgreSQL (cluster).')
@click.option('--broker', type=click.Choice(['zeromq', 'rabbitmq', 'none']), default='zeromq', show_default=True,
              help='zeromq: built into aiida-core 2.9, no service needed. rabbitmq: production broker.')
@click.option('--profile-name', default=None, help='Default: `glassml` (sqlite) or `glassml-psql` (psql).')
@click.option('--postgres-host', default='127.0.0.1', show_default=True)
@click.option('--postgres-port', default=5432, show_default=True)
@click.option('--postgres-user', default='postgres', show_default=True)
@click.option('--rabbitmq-host', default='127.0.0.1', show_default=True)
@click.option('--rabbitmq-port', default=5672, show_default=True)
@click.option('--codes/--no-codes', default=True, show_default=True, help='Register the codes found on this machine.')
@click.option('--apt/--no-apt', default=True, show_default=True,
              help='Install missing CP2K / Quantum ESPRESSO with apt-get when running as root.')
@click.option('--lammps-pace', type=click.Path(dir_okay=False), default=None,
              help='A LAMMPS `lmp` built with ML-PACE, registered as `lammps-pace` for ACE MD in LAMMPS '
                   '(default: $GLASSML_LAMMPS_PACE).')
def cmd_setup(storage, broker, profile_name, postgres_host, postgres_port, postgres_user, rabbitmq_host,
              rabbitmq_port, codes, apt, lammps_pace):  # fmt: skip
    """Create (or reuse) a profile and register the codes found on this machine. Idempotent."""
    from aiida import load_profile

    from aiida_glassml.tools import setup

    name = profile_name or ('glassml' if storage == 'sqlite' else 'glassml-psql')
    services = setup.Services(postgres_host=postgres_host, postgres_port=postgres_port, postgres_user=postgres_user,
                              rabbitmq_host=rabbitmq_host, rabbitmq_port=rabbitmq_port)  # fmt: skip
    if apt:
        setup.ensure_system_codes(echo=click.echo)
    try:
        setup.create_profile(name, storage, broker, services, echo=click.echo)
    except setup.SetupError as exc:
        fail(str(exc))
    from aiida.manage.configuration import reset_config

    reset_config()  # presto wrote the config in a subprocess
    load_profile(name, allow_switch=True)
    if codes:
        registered = setup.register_codes(echo=click.echo)
        try:
            pace = setup.register_lammps_pace(lammps_pace, echo=click.echo)
        except setup.SetupError as exc:
            fail(str(exc))
        if pace:
            registered[setup.LAMMPS_PACE_LABEL] = pace
        else:
            click.echo(f'No ML-PACE LAMMPS named (--lammps-pace or ${setup.LAMMPS_PACE_ENV}): ACE MD runs in ASE.')
        click.echo(f'Codes on localhost: {", ".join(sorted(registered)) or "none"}')
    click.echo(f'Profile `{name}` is ready. Use it with `verdi -p {name} ...` or `aiida-glassml -p {name} ...`.')


@cli.command('status')
def cmd_status():
    """Show the profile, its storage and broker, the daemon and the registered codes."""
    from aiida.engine.daemon.client import get_daemon_client
    from aiida.manage import get_manager
    from aiida.orm import InstalledCode, QueryBuilder

    profile = get_manager().get_profile()
    if profile is None:
        fail('no AiiDA profile is loaded; run `aiida-glassml setup` first.')
    click.echo(f'profile: {profile.name}')
    click.echo(f'storage: {profile.storage_backend}')
    click.echo(f'broker:  {profile.process_control_backend or "none (only `run` works, not `submit`)"}')
    try:
        client = get_daemon_client(profile.name)
        running = client.is_daemon_running
    except Exception:  # noqa: BLE001 - a profile without broker has no daemon
        running = False
    click.echo(f'daemon:  {"running" if running else "stopped (start it with `verdi daemon start`)"}')
    codes = QueryBuilder().append(InstalledCode, project=['label', 'attributes.filepath_executable']).all()
    click.echo('codes:')
    for label, path in sorted(codes):
        click.echo(f'  {label:<16} {path}')
    if not codes:
        click.echo('  none (run `aiida-glassml setup`)')

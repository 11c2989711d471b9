"""``aiida-glassml setup`` and ``aiida-glassml status``."""

import click

from . import cli
from .utils import fail


POSTGRES_OPTIONS = [
    click.option('--postgres-host', default='127.0.0.1', show_default=True),
    click.option('--postgres-port', default=5432, show_default=True),
    click.option('--postgres-user', default='postgres', show_default=True,
                 help='A PostgreSQL superuser: creates (and drops) one login role and database per profile.'),
]


def _postgres_options(func):
    for option in reversed(POSTGRES_OPTIONS):
        func = option(func)
    return func


def _root_profile_name(ctx: click.Context) -> str | None:
    """The profile named with ``aiida-glassml -p NAME setup`` (not the default that ``-p`` falls back to): an existing
    one, or a new name the root group kept for setup to create."""
    from click.core import ParameterSource

    from . import NEW_PROFILE

    if ctx.meta.get(NEW_PROFILE) is not None:
        return ctx.meta[NEW_PROFILE][0]
    root = ctx.find_root()
    if root.get_parameter_source('profile') in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
        profile = getattr(root.obj, 'profile', None)
        return getattr(profile, 'name', None)
    return None


@cli.command('setup')
@click.option('--storage', type=click.Choice(['sqlite', 'psql']), default=None,
              help='sqlite: embedded core.sqlite_dos (laptop). psql: core.psql_dos on PostgreSQL (cluster). '
                   'Default: the existing profile\'s, else sqlite.')
@click.option('--broker', type=click.Choice(['zeromq', 'rabbitmq', 'none']), default=None,
              help='zeromq: built into aiida-core 2.9, no service needed. rabbitmq: production broker. '
                   'Default: the existing profile\'s, else zeromq.')
@click.option('-p', '--profile-name', default=None,
              help='The profile to create or check (`aiida-glassml -p NAME setup` also names an existing one). '
                   'Default: `glassml` (sqlite) or `glassml-psql` (psql).')
@click.option('--set-default', is_flag=True, help='Make it the default profile (the first profile always is).')
@click.option('--switch-broker', is_flag=True,
              help='Reconfigure an existing profile whose broker differs from --broker (its daemon stopped).')
@_postgres_options
@click.option('--rabbitmq-host', default='127.0.0.1', show_default=True)
@click.option('--rabbitmq-port', default=5672, show_default=True)
@click.option('--codes/--no-codes', default=True, show_default=True, help='Register the codes found on this machine.')
@click.option('--apt/--no-apt', default=True, show_default=True,
              help='Install missing CP2K / Quantum ESPRESSO with apt-get when running as root.')
@click.option('--lammps-pace', type=click.Path(dir_okay=False), default=None,
              help='A LAMMPS `lmp` built with ML-PACE, registered as `lammps-pace` for ACE MD in LAMMPS '
                   '(default: $GLASSML_LAMMPS_PACE).')
@click.pass_context
def cmd_setup(ctx, storage, broker, profile_name, set_default, switch_broker, postgres_host, postgres_port,
              postgres_user, rabbitmq_host, rabbitmq_port, codes, apt, lammps_pace):  # fmt: skip
    """Create (or check and reuse) a profile and register the codes found on this machine. Idempotent.

    An existing profile of another storage or broker is refused (see --switch-broker); the default profile changes
    only with --set-default, or when there is none yet."""
    from aiida import load_profile

    from aiida_glassml.tools import setup

    root_name = _root_profile_name(ctx)
    if root_name and profile_name and root_name != profile_name:
        fail(f'two profile names: `-p {root_name}` and `--profile-name {profile_name}`; give one.')
    name = profile_name or root_name or ('glassml-psql' if storage == 'psql' else 'glassml')
    services = setup.Services(postgres_host=postgres_host, postgres_port=postgres_port, postgres_user=postgres_user,
                              rabbitmq_host=rabbitmq_host, rabbitmq_port=rabbitmq_port)  # fmt: skip
    try:
        storage, broker = setup.create_profile(name, storage, broker, services, echo=click.echo,
                                               set_default=set_default, switch_broker=switch_broker)  # fmt: skip
    except setup.SetupError as exc:
        fail(str(exc))
    if apt:
        setup.ensure_system_codes(echo=click.echo)
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
    click.echo(f'Profile `{name}` is ready (storage: {storage}, broker: {broker}). Use it with `verdi -p {name} ...` '
               f'or `aiida-glassml -p {name} ...`.')  # fmt: skip


@cli.command('delete-profile')
@click.argument('name')
@click.option('--force', is_flag=True, help='Do not ask.')
@_postgres_options
def cmd_delete_profile(name, force, postgres_host, postgres_port, postgres_user):
    """Delete profile NAME with all its data; for PostgreSQL also its database and the login role setup made for it."""
    from aiida_glassml.tools import setup

    if not force:
        click.confirm(f'Delete profile `{name}` and ALL its data?', abort=True)
    services = setup.Services(postgres_host=postgres_host, postgres_port=postgres_port, postgres_user=postgres_user)
    try:
        setup.delete_profile(name, services, echo=click.echo)
    except setup.SetupError as exc:
        fail(str(exc))


@cli.command('status')
def cmd_status():
    """Check the profile: its storage, broker, daemon and codes. Exits 1 when something is broken."""
    import sys

    from aiida.manage import get_manager
    from aiida.manage.configuration import get_config

    from aiida_glassml.tools import setup

    profile = get_manager().get_profile()
    if profile is None:
        fail('no AiiDA profile is loaded; run `aiida-glassml setup` first.')
    marks = {'ok': '', 'warning': 'WARNING: ', 'error': 'ERROR: '}
    worst = set()

    def show(key, level, message):
        worst.add(level)
        click.echo(f'{key + ":":<9}{marks[level]}{message}')

    default = get_config().default_profile_name
    show('profile', 'ok', profile.name + (' (default)' if profile.name == default else f' (default: {default})'))
    storage_level, storage_message = setup.storage_status(profile)
    show('storage', storage_level, storage_message)
    state, level, message = setup.daemon_status(profile)
    for broker_level, broker_message in setup.broker_status(profile, state):
        show('broker', broker_level, broker_message)
    show('daemon', level, message)
    if storage_level == 'error':
        click.echo('codes:   unknown (the storage cannot be opened)')
    else:
        get_manager().get_profile_storage()
        lines = setup.codes_status(profile.name)
        click.echo('codes:')
        for code_level, code_message in lines:
            worst.add(code_level)
            click.echo(f'  {marks[code_level]}{code_message}')
    if 'error' in worst:
        sys.exit(1)

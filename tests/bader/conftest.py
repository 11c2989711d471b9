"""Fixtures of the Bader tests: the labelling tests' NaPO3 cell and codes (CP2K, the venv python)."""

from __future__ import annotations

import pathlib

import pytest

DATA = pathlib.Path(__file__).parent / 'data'
#: a real CP2K density of ``napo3_atoms()`` (fast protocol, PBE, SZV-MOLOPT, 400 Ry), written with STRIDE 2
NAPO3_CUBE = DATA / 'napo3_cp2k_stride2.cube.gz'
#: GTH-PBE q-values of the fast CP2K protocol (GTH-PBE-q9, -q5, -q6)
CP2K_VALENCES = {'Na': 9, 'P': 5, 'O': 6}


def _conftest_of(folder: str):
    """Another test folder's conftest as a module (the test folders are not packages)."""
    import importlib.util

    path = pathlib.Path(__file__).parents[1] / folder / 'conftest.py'
    spec = importlib.util.spec_from_file_location(f'_glassml_{folder}_conftest', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def napo3_atoms():
    """The labelling tests' 20-atom Na4P4O12 cell (tests/labeling/conftest.py)."""
    return _conftest_of('labeling').napo3_atoms()


@pytest.fixture(scope='module')
def cp2k_code(aiida_profile, tmp_path_factory):
    return _conftest_of('labeling').local_code('cp2k', 'cp2k', tmp_path_factory.mktemp('bader_work'))


@pytest.fixture(scope='module')
def python_code(aiida_profile, tmp_path_factory):
    """The venv python as `aiida-glassml setup` registers it (glassml-python), on a local computer of these tests."""
    import sys

    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer('bader-localhost')
    except NotExistent:
        computer = orm.Computer(
            label='bader-localhost', hostname='localhost', transport_type='core.local', scheduler_type='core.direct',
            workdir=str(tmp_path_factory.mktemp('bader_work')),
        ).store()  # fmt: skip
        computer.configure(safe_interval=0.0)
        computer.set_minimum_job_poll_interval(0.0)
    try:
        return orm.load_code(f'glassml-python@{computer.label}')
    except NotExistent:
        return orm.InstalledCode(computer=computer, filepath_executable=sys.executable, label='glassml-python',
                                 default_calc_job_plugin='glassml.bader').store()  # fmt: skip

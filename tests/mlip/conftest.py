"""Fixtures for the MLIP tests: torch on one CPU thread, the venv python code, and the shipped models as nodes."""

from __future__ import annotations

import pytest


@pytest.fixture(scope='session', autouse=True)
def torch_one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def python_code(installed_code):
    return installed_code('python', 'glassml.ase_md', label='glassml-python')


@pytest.fixture(scope='module')
def chgnet_potential(aiida_profile):
    from aiida_glassml.data.mlip_potential import MlipPotentialData

    return MlipPotentialData.chgnet().store()


@pytest.fixture(scope='module')
def sevennet_potential(aiida_profile):
    from aiida_glassml.data.mlip_potential import MlipPotentialData

    return MlipPotentialData.sevennet(model='7net-0').store()

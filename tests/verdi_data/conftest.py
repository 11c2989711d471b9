"""Fixtures for ``verdi data glassml.*``: the real ``verdi`` entry point and one stored node of each glassml type."""

from __future__ import annotations

import pytest


@pytest.fixture
def run_verdi(aiida_profile):
    """Return ``run_verdi(*args)``: ``verdi <args>`` through click, so the ``aiida.cmdline.data`` entry points are
    what finds the glassml commands. ``-p`` pins the test profile rather than the default of the config."""
    from aiida.cmdline.commands.cmd_verdi import verdi
    from click.testing import CliRunner

    def run(*args: str):
        return CliRunner().invoke(verdi, ['-p', aiida_profile.name, *map(str, args)])

    return run


@pytest.fixture(scope='module')
def stored_training_set(aiida_profile, reference_test_set_path):
    """The published NaFePO4 test set (436 frames), labelled with a known engine."""
    from aiida_glassml.data import TrainingSetData

    node = TrainingSetData.from_file(reference_test_set_path, level_of_theory={'engine': 'vasp'}, label='nafepo4-test')
    return node.store()


@pytest.fixture(scope='module')
def stored_ace_potential(aiida_profile, reference_potential_yaml, reference_potential_yace):
    from aiida_glassml.data import AcePotentialData

    # a node of its own: get_or_create could return one that an earlier test on this worker stored from the yaml
    # alone, whose .yace pace_yaml2yace wrote (equal to ~1e-12, not byte for byte)
    node = AcePotentialData(yaml=reference_potential_yaml.read_bytes(), yace=reference_potential_yace).store()
    node.label = 'nafepo4-ace'
    return node


@pytest.fixture(scope='module')
def stored_teter(aiida_profile):
    from aiida_glassml.data.classical_potential import ClassicalPotentialData

    node = ClassicalPotentialData.from_library('teter')
    node.label = 'teter-lib'
    return node.store()

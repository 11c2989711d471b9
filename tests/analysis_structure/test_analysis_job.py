"""``AnalysisCalculation`` (the heavy analysis steps as jobs): a failed analysis is an exit code with its one-line
reason, and ``GlassAnalysisWorkChain`` reports a failed job as exit 310 naming the step."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def glass(reference_glass_paths):
    from aiida.orm import StructureData

    from aiida_glassml.analysis import read_structure

    return StructureData(ase=read_structure(reference_glass_paths['ACE_300K_1']))


def test_a_failed_analysis_is_exit_310_with_its_reason(aiida_profile, installed_code):
    from aiida.engine import run_get_node
    from aiida.orm import Dict, Str

    from aiida_glassml.analysis.dynamics import Trajectory
    from aiida_glassml.calcfunctions.analysis import trajectory_node_from
    from aiida_glassml.calculations.analysis import AnalysisCalculation

    rng = np.random.default_rng(0)
    sites = rng.random((12, 3)) * 8.0  # atoms vibrating about their sites: a valid trajectory of 1.9 ps
    positions = np.mod(sites + rng.normal(scale=0.05, size=(20, 12, 3)), 8.0).astype(np.float32)
    traj = Trajectory(positions=positions, symbols=np.array(['Na', 'O'] * 6),
                      times=np.arange(20) * 0.1, cell=np.eye(3) * 8.0, wrapped=True)  # fmt: skip
    code = installed_code('python', 'glassml.analysis', label='glassml-python')
    _, node = run_get_node(AnalysisCalculation, code=code, task=Str('dynamics'), trajectory=trajectory_node_from(traj),
                           parameters=Dict({'temperature': 800.0, 'van_hove_times': [50.0]}))  # fmt: skip
    assert node.exit_status == 310, node.exit_message
    assert node.exit_message.startswith('the dynamics analysis failed: ') and 'van Hove time 50 ps' in node.exit_message
    assert '\n' not in node.exit_message


def test_task_and_input_must_match(aiida_profile, installed_code, glass, node_count):
    from aiida.engine import run
    from aiida.orm import Str

    from aiida_glassml.calculations.analysis import AnalysisCalculation

    code = installed_code('python', 'glassml.analysis', label='glassml-python')
    before = node_count()
    with pytest.raises(ValueError, match="task 'dynamics' analyses a `trajectory`: give it, and no `structure`"):
        run(AnalysisCalculation, code=code, task=Str('dynamics'), structure=glass)
    with pytest.raises(ValueError, match="unknown analysis task 'rings'"):
        run(AnalysisCalculation, code=code, task=Str('rings'), structure=glass)
    assert node_count() == before


def test_workchain_reports_a_failed_job(aiida_profile, aiida_localhost, glass):
    from aiida.engine import run_get_node
    from aiida.orm import InstalledCode, Log

    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    dead = InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='writes-nothing').store()
    _, node = run_get_node(GlassAnalysisWorkChain.get_builder_from_protocol(structure=glass, protocol='fast',
                                                                            code=dead))  # fmt: skip
    assert node.exit_status == 310, node.exit_message
    assert 'structure (AnalysisCalculation<' in node.exit_message and 'exit 300' in node.exit_message
    assert 'network (AnalysisCalculation<' in node.exit_message
    assert any('analysis job(s) failed' in log.message for log in Log.collection.get_logs_for(node))

"""The teacher engine with an MLIP: LabelWorkChain, engine `potential`, labels a published NaFePO4 test structure with
CHGNet 0.3.0 (shipped weights) in one PotentialLabelCalculation; the labels are CHGNet's own, and the level of theory
records the MLIP (calculator, weights hash, shipped model, package version)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.common import mlip
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.labeling.level_of_theory import compare_levels
from aiida_glassml.workflows.label import LabelWorkChain


@pytest.fixture(scope='module', autouse=True)
def torch_one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def python_code(installed_code):
    return installed_code('python', 'glassml.potential_label', label='glassml-python')


@pytest.fixture(scope='module')
def chgnet(aiida_profile):
    from aiida_glassml.data.mlip_potential import MlipPotentialData

    return MlipPotentialData.chgnet().store()


@pytest.fixture(scope='module')
def smallest_frame(reference_test_set_path):
    frames = FrameSet.read_pacemaker_pickle(reference_test_set_path)
    atoms = frames.select([int(np.argmin(frames.n_atoms))]).to_atoms()[0]
    atoms.calc = None
    return atoms


@pytest.mark.slow
def test_chgnet_teacher_labels_and_level_of_theory(python_code, chgnet, smallest_frame):
    structures = {'frame': orm.StructureData(ase=smallest_frame)}
    builder = LabelWorkChain.get_builder_from_protocol(python_code, structures, engine='potential', mode='single_point',
                                                       protocol='fast', potential=chgnet)  # fmt: skip
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message

    frames = results['training_set'].get_frameset()
    reference = smallest_frame.copy()
    reference.calc = chgnet.get_calculator()
    assert frames.n_frames == 1
    assert abs(frames.energy[0] - reference.get_potential_energy()) / len(reference) < 1e-6
    np.testing.assert_allclose(frames.forces, reference.get_forces(), rtol=0, atol=1e-5)

    level = results['training_set'].level_of_theory
    shipped = chgnet.base.attributes.get('shipped_model')
    assert level['engine'] == 'potential' and level['potential_type'] == 'mlip'
    assert level['potential_uuid'] == chgnet.uuid
    assert level['calculator'] == 'chgnet.model.dynamics:CHGNetCalculator'
    assert level['shipped_model'] == 'chgnet 0.3.0'
    assert level['model_sha256'] == shipped['sha256'] == mlip.sha256_file(mlip.package_dir('chgnet') / shipped['path'])
    assert level['package'] == 'chgnet' and level['package_version'] == chgnet.package_version
    # another chgnet build with the same weights is the same level of theory; other weights are not
    assert compare_levels(level, {**level, 'package_version': '9.9'}) == []
    assert compare_levels(level, {**level, 'model_sha256': '0' * 64}) != []


def test_mlip_teacher_bad_input_stores_nothing(python_code, chgnet, smallest_frame, node_count):
    from aiida_glassml.data.mlip_potential import MlipPotentialData

    narrow = MlipPotentialData(calculator='chgnet.model.dynamics:CHGNetCalculator', elements=['Na', 'P', 'O'])
    structures = {'frame': orm.StructureData(ase=smallest_frame)}
    before = node_count()
    with pytest.raises(LabelingInputError, match=r"the MLIP potential <.*> .*\['Fe'\]"):
        LabelWorkChain.get_builder_from_protocol(python_code, structures, engine='potential', mode='single_point',
                                                 protocol='fast', potential=narrow)  # fmt: skip
    with pytest.raises(LabelingInputError, match='engine `potential` needs `potential`: the teacher, an '
                                                 'AcePotentialData, MlipPotentialData or ClassicalPotentialData'):
        LabelWorkChain.get_builder_from_protocol(python_code, structures, engine='potential', mode='single_point',
                                                 protocol='fast')  # fmt: skip
    assert node_count() == before

"""Real CP2K: a single point of the 20-atom NaPO3 cell with `bader.enabled` prints the electron-density cube, a
BaderCalculation splits it, and the charges land per frame in the training set, from where GlassAnalysisWorkChain
bins them into oxidation states."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.calculations.bader import BaderCalculation
from aiida_glassml.labeling import cp2k
from aiida_glassml.workflows.label import LabelWorkChain

from .conftest import napo3_atoms

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def bader_label_run(cp2k_code, python_code):
    structure = orm.StructureData(ase=napo3_atoms())
    builder = LabelWorkChain.get_builder_from_protocol(
        cp2k_code, {'napo3': structure}, engine='cp2k', mode='single_point', protocol='fast',
        overrides={'bader': {'enabled': True}},
    )  # fmt: skip
    builder.bader_code = python_code
    _, node = run_get_node(builder)
    return node


def test_cp2k_single_point_gives_bader_charges(bader_label_run):
    assert bader_label_run.is_finished_ok, bader_label_run.exit_message
    (bader,) = [n for n in bader_label_run.called if n.process_class is BaderCalculation]
    assert bader.is_finished_ok, bader.exit_message
    # the cube came from the CP2K run that labelled the frame, with the GTH q-values as Z_val
    assert bader.inputs.density_filename.value == cp2k.DENSITY_CUBE_FILE
    assert bader.inputs.valences.get_dict() == {'Na': 9.0, 'O': 6.0, 'P': 5.0}
    summary = bader.outputs.summary.get_dict()
    assert summary['n_electrons_bader'] == pytest.approx(128, rel=0.01)  # 4 × (9 + 5 + 3 × 6) valence electrons
    frames = bader_label_run.outputs.training_set.get_frameset()
    assert bader_label_run.outputs.training_set.base.attributes.get('has_bader_charges')
    assert frames.has_bader.tolist() == [True]
    charges = frames.bader_charges
    np.testing.assert_allclose(charges, bader.outputs.charges.get_array('charges'))
    symbols = np.array(['Na', 'P', 'O'])[[{11: 0, 15: 1, 8: 2}[z] for z in frames.numbers]]
    assert (charges[symbols == 'Na'] > 0).all() and (charges[symbols == 'P'] > 0).all()
    assert (charges[symbols == 'O'] < 0).all()
    assert abs(charges.sum()) < 0.01 * 128
    assert bader_label_run.outputs.report['failed'] == []


def test_oxidation_states_from_bader_charges(bader_label_run):
    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    training_set = bader_label_run.outputs.training_set
    parameters = {'source': 'bader', 'element': 'Na', 'bins': [[0.4, 1.3, 1]]}
    _, node = run_get_node(GlassAnalysisWorkChain, training_set=training_set,
                           oxidation_parameters=orm.Dict(parameters))  # fmt: skip
    assert node.is_finished_ok, node.exit_message
    summary = node.outputs.oxidation.oxidation_states.get_dict()
    assert summary['source'] == 'bader'
    assert summary['per_frame'] == [{'1': 4, 'unassigned': 0}]


def test_bader_settings_refused_before_storing(cp2k_code, python_code, node_count):
    from aiida.engine import run

    structure = orm.StructureData(ase=napo3_atoms())
    before = node_count()
    with pytest.raises(ValueError, match='`bader.enabled` is for single points of cp2k or vasp'):
        builder = LabelWorkChain.get_builder_from_protocol(
            cp2k_code, {'napo3': structure}, engine='cp2k', mode='aimd', protocol='fast',
            overrides={'bader': {'enabled': True}},
        )  # fmt: skip
        builder.bader_code = python_code
        run(builder)
    with pytest.raises(ValueError, match='`bader.stride` must be a positive integer'):
        builder = LabelWorkChain.get_builder_from_protocol(
            cp2k_code, {'napo3': structure}, engine='cp2k', mode='single_point', protocol='fast',
            overrides={'bader': {'enabled': True, 'stride': 0}},
        )  # fmt: skip
        builder.bader_code = python_code
        run(builder)
    assert node_count() == before


def test_oxidation_from_bader_needs_charges_and_bins(bader_label_run, node_count):
    from aiida_glassml.calcfunctions.analysis_structure import run_oxidation_states
    from aiida_glassml.data.training_set import TrainingSetData

    before = node_count()
    with pytest.raises(ValueError, match='Bader-charge bins have no defaults'):
        run_oxidation_states(bader_label_run.outputs.training_set, {'source': 'bader', 'element': 'Na'})
    without = TrainingSetData(bader_label_run.outputs.training_set.get_frameset().select([0]))
    without_frames = without.get_frameset()
    assert without_frames.has_bader.all()  # select keeps them
    plain = TrainingSetData.from_atoms(napo3_frames_without_charges())
    with pytest.raises(ValueError, match='has no Bader charges in any frame'):
        run_oxidation_states(plain, {'source': 'bader', 'element': 'Na', 'bins': [[0.4, 1.3, 1]]})
    with pytest.raises(ValueError, match="oxidation source 'mulliken' is unknown"):
        run_oxidation_states(bader_label_run.outputs.training_set, {'source': 'mulliken'})
    assert node_count() == before


def napo3_frames_without_charges():
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = napo3_atoms()
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((len(atoms), 3)))
    return [atoms]

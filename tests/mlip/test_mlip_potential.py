"""MlipPotentialData: the universal models shipped in the chgnet and sevenn wheels evaluated on a slice of the published
NaFePO4 test set and cross-checked against their own calculators called directly; the node round trip; a short ASE MD
with a stored model file; bad input refused before anything is stored."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory, DataFactory

from aiida_glassml.common import mlip
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.common.mlip import MlipError
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.md.protocol import NVT, GammaTracking, MDProtocol

SEVENN_CALCULATOR = 'sevenn.calculator:SevenNetCalculator'


@pytest.fixture(scope='module')
def test_slice(reference_test_set_path) -> FrameSet:
    """The three smallest frames (100 atoms each) of the published NaFePO4 DFT test set."""
    frames = FrameSet.read_pacemaker_pickle(reference_test_set_path)
    return frames.select(np.argsort(frames.n_atoms, kind='stable')[:3].tolist())


@pytest.fixture(scope='module')
def test_slice_node(aiida_profile, test_slice):
    from aiida_glassml.data import TrainingSetData

    return TrainingSetData(test_slice).store()


def _direct(calculator, frames: FrameSet):
    """Energies and forces from the package's own calculator, called directly on the frames."""
    energies, forces = [], []
    for atoms in frames.to_atoms():
        atoms.calc = calculator
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
    return np.array(energies), np.concatenate(forces)


def _own_calculator(family: str):
    if family == 'chgnet':
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(use_device='cpu')
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator('7net-0', device='cpu')


@pytest.mark.parametrize('family', ['chgnet', 'sevennet'])
def test_shipped_model_evaluates_like_its_own_calculator(family, request, test_slice, test_slice_node, python_code):
    """The evaluation job (EvaluatePotentialCalculation on the venv python) with CHGNet 0.3.0 / SevenNet-0 on 3
    published test frames: the same energies (1e-6 eV/atom) and per-frame force errors (1e-2 meV/Å) as
    CHGNetCalculator() / SevenNetCalculator('7net-0') called directly."""
    from aiida_glassml.calcfunctions.potential import run_evaluate_potential

    potential = request.getfixturevalue(f'{family}_potential')
    results = run_evaluate_potential(potential, test_slice_node)
    metrics, errors = results['metrics'].get_dict(), results['frame_errors']
    assert metrics['n_frames'] == 3 and metrics['reference_energy_source'] == 'none'
    assert results['metrics'].creator.process_label == 'EvaluatePotentialCalculation'
    energy_direct, forces_direct = _direct(_own_calculator(family), test_slice)

    n_atoms = test_slice.n_atoms
    assert np.abs((errors.get_array('energy_predicted') - energy_direct) / n_atoms).max() < 1e-6
    # forces: every frame's stored force errors against DFT are those of the direct forces
    frame_of_atom = np.repeat(np.arange(3), n_atoms)
    delta = forces_direct - test_slice.forces
    direct_mae = [1000 * np.abs(delta[frame_of_atom == i]).mean() for i in range(3)]
    direct_rmse = [1000 * np.sqrt((delta[frame_of_atom == i] ** 2).mean()) for i in range(3)]
    assert np.allclose(errors.get_array('force_mae'), direct_mae, rtol=0, atol=1e-2)  # meV/Å
    assert np.allclose(errors.get_array('force_rmse'), direct_rmse, rtol=0, atol=1e-2)
    # universal PBE models, not fitted to this test set: errors of the right order, not garbage
    assert 100 < metrics['force_mae'] < 2000


def test_node_round_trip(chgnet_potential, sevennet_potential, tmp_path):
    """Stored and loaded again: calculator, version, weights hash, elements and provenance survive; a user's model
    file is stored in the repository by hash and written back byte for byte."""
    from importlib.metadata import version

    loaded = orm.load_node(chgnet_potential.pk)
    assert isinstance(loaded, DataFactory('glassml.mlip_potential'))
    assert loaded.calculator == 'chgnet.model.dynamics:CHGNetCalculator'
    assert loaded.package_version == version('chgnet') == '0.4.2'
    assert loaded.base.attributes.get('package') == 'chgnet'
    shipped = loaded.base.attributes.get('shipped_model')
    assert shipped['sha256'] == mlip.sha256_file(mlip.package_dir('chgnet') / shipped['path'])
    assert {'Na', 'Fe', 'P', 'O'} <= set(loaded.elements) and len(loaded.elements) == 94
    assert loaded.provenance['model'] == 'CHGNet 0.3.0' and loaded.device == 'cpu'
    assert not loaded.has_model_file and loaded.write_files(tmp_path) == {}
    seven = orm.load_node(sevennet_potential.pk)
    assert seven.package_version == '0.13.0' and len(seven.elements) == 89

    # a user's model file (here SevenNet-0's checkpoint as if trained by the user) through the same calculator
    checkpoint = mlip.package_dir('sevenn') / shipped_path('sevennet', '7net-0')
    user_file = tmp_path / 'my_model.pth'
    user_file.write_bytes(checkpoint.read_bytes())
    node = MlipPotentialData(calculator=SEVENN_CALCULATOR, model_file=user_file, model_keyword='model',
                             provenance={'trained_on': 'nothing: a copy of SevenNet-0'}).store()  # fmt: skip
    again = orm.load_node(node.pk)
    assert again.model_filename == 'model.pth'
    assert again.base.attributes.get('sha256_model') == mlip.sha256_file(user_file)
    written = again.write_files(tmp_path / 'out')['model']
    assert written.read_bytes() == user_file.read_bytes()
    assert again.calculator_spec()['model'] == {'file': 'model.pth'}
    assert again.provenance == {'trained_on': 'nothing: a copy of SevenNet-0'}
    assert again.calculator_spec()['model_keyword'] == 'model'  # its energies: the MD test below
    # as an ASE `calculator` input (melt-quench, elastic): shipped weights by hash; a model file only as `potential`
    assert loaded.calculator_input() == {'name': 'aiida_glassml.common.mlip:shipped_calculator', 'kwargs': {
        'family': 'chgnet', 'model': '0.3.0', 'sha256': shipped['sha256'], 'device': 'cpu', 'device_fallback': False}}
    with pytest.raises(MlipError, match='has its own model file'):
        again.calculator_input()


def shipped_path(family: str, model: str) -> str:
    return mlip.shipped_model(family, model)['path']


def test_md_with_a_stored_model_file(python_code, chgnet_potential, tmp_path):
    """A few NVT steps of a 28-atom NaFePO4 cell with a CHGNet model file stored in the node (loaded by the factory
    `CHGNetCalculator.from_file`): the file is copied into the calculation folder and loaded from there; step 0's
    energy is that of CHGNet 0.3.0 as shipped."""
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location('_glassml_md_ase_conftest',
                                                  pathlib.Path(__file__).parents[1] / 'md_ase' / 'conftest.py')  # fmt: skip
    md_ase = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(md_ase)
    atoms = md_ase.random_nafepo4(formula_units=4, seed=0)

    user_file = tmp_path / 'my_chgnet.pth.tar'
    user_file.write_bytes((mlip.package_dir('chgnet') / shipped_path('chgnet', '0.3.0')).read_bytes())
    potential = MlipPotentialData(calculator='chgnet.model.dynamics:CHGNetCalculator.from_file', model_file=user_file,
                                  model_keyword='path')  # fmt: skip
    assert potential.model_filename == 'model.pth.tar' and len(potential.elements) == 94
    protocol = MDProtocol(stages=[NVT(300.0, 0.004)], timestep=0.001, thermo_interval=1, dump_interval=2, seed=1)
    builder = CalculationFactory('glassml.ase_md').get_builder()
    builder.code = python_code
    builder.structure = orm.StructureData(ase=atoms)
    builder.protocol = orm.Dict(protocol.to_dict())
    builder.potential = potential
    results, node = run_get_node(builder)

    assert node.exit_status == 0, node.exit_message
    summary = results['results'].get_dict()
    assert summary['stop_reason'] == 'completed' and summary['n_steps'] == 4
    assert summary['versions']['chgnet'] == '0.4.2'
    assert 'CHGNetCalculator' in summary['engine_version']
    assert 'model.pth.tar' in results['remote_folder'].listdir()
    energy0 = results['thermo'].get_array('potential_energy')[0]
    reference = atoms.copy()
    reference.calc = chgnet_potential.get_calculator()
    assert abs(energy0 - reference.get_potential_energy()) / len(atoms) < 1e-6
    assert results['trajectory'].get_stepids().tolist() == [0, 2, 4]


def test_teacher_labels_with_an_mlip(python_code, chgnet_potential, test_slice):
    """PotentialLabelCalculation with CHGNet as the teacher: the labels are CHGNet's own energies and forces."""
    structure = orm.StructureData(ase=test_slice.to_atoms()[0])
    builder = CalculationFactory('glassml.potential_label').get_builder()
    builder.code = python_code
    builder.structures = {'frame0': structure}
    builder.potential = chgnet_potential
    results, node = run_get_node(builder)

    assert node.exit_status == 0, node.exit_message
    labels = results['labels']
    assert results['results'].get_dict()['versions']['chgnet'] == '0.4.2'
    reference = structure.get_ase()
    reference.calc = chgnet_potential.get_calculator()
    assert abs(labels.get_array('energy')[0] - reference.get_potential_energy()) / len(reference) < 1e-6
    assert np.abs(labels.get_array('forces') - reference.get_forces()).max() < 1e-5


# -- bad input: one line, nothing stored -----------------------------------------------------------------------
def test_bad_model_file_unknown_calculator_and_models(aiida_profile, node_count, tmp_path):
    before = node_count()
    broken = tmp_path / 'broken.pth'
    broken.write_text('not a checkpoint\n')
    loads = r'model file .*broken\.pth does not load with sevenn\.calculator:SevenNetCalculator \(UnpicklingError'
    with pytest.raises(MlipError, match=loads):
        MlipPotentialData(calculator=SEVENN_CALCULATOR, model_file=broken, model_keyword='model')
    with pytest.raises(MlipError, match=r"unknown calculator 'no_such_package\.calc:Model'"):
        MlipPotentialData(calculator='no_such_package.calc:Model', elements=['Na'])
    with pytest.raises(MlipError, match='model file .*missing.pth not found'):
        MlipPotentialData(calculator=SEVENN_CALCULATOR, model_file=tmp_path / 'missing.pth', model_keyword='model')
    with pytest.raises(MlipError, match=r"sevennet ships no model '7net-omni' here"):
        MlipPotentialData.sevennet(model='7net-omni')  # would be a download: refused
    with pytest.raises(MlipError, match=r"7net-mf-0 is multi-fidelity; give modal= one of \['PBE', 'R2SCAN'\]"):
        MlipPotentialData.sevennet(model='7net-mf-0')
    with pytest.raises(MlipError, match=r"has no parameters for \['Og'\]"):
        MlipPotentialData(calculator='chgnet.model.dynamics:CHGNetCalculator', elements=['Na', 'Og'])
    assert node_count() == before


def test_shipped_weights_missing_are_refused_not_downloaded(monkeypatch, tmp_path):
    """An install without the shipped weights: one line naming the file and the fix; sevenn's downloader never runs."""
    import sevenn.util

    monkeypatch.setattr(mlip, 'package_dir', lambda package: tmp_path)
    monkeypatch.setattr(sevenn.util, 'download_checkpoint', lambda *a, **k: pytest.fail('tried to download'))
    with pytest.raises(MlipError, match=r'has no shipped weights pretrained_potentials/SevenNet_0__11Jul2024/'
                                        r'checkpoint_sevennet_0\.pth; reinstall the sevenn wheel'):  # fmt: skip
        MlipPotentialData.sevennet()


def test_gpu_request_on_a_cpu_machine(aiida_profile, node_count, monkeypatch):
    """device='cuda' where torch sees no GPU: refused, saying so; with device_fallback=True it runs on the CPU."""
    import torch

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    before = node_count()
    with pytest.raises(MlipError, match=r"device 'cuda' requested but this machine has no GPU .*device_fallback=True"):
        MlipPotentialData.chgnet(device='cuda')
    with pytest.raises(MlipError, match=r"device 'tpu' is not a device"):
        MlipPotentialData.chgnet(device='tpu')
    assert node_count() == before
    potential = MlipPotentialData.chgnet(device='cuda', device_fallback=True)
    assert potential.device == 'cuda' and potential.base.attributes.get('device_fallback') is True
    assert str(potential.get_calculator().device) == 'cpu'


def test_uncovered_elements_and_gamma_refused_before_storing(node_count, test_slice, tmp_path, chgnet_potential,
                                                            python_code):  # fmt: skip
    from aiida_glassml.calcfunctions.potential import run_evaluate_potential
    from aiida_glassml.data import TrainingSetData

    narrow = MlipPotentialData(calculator='chgnet.model.dynamics:CHGNetCalculator', elements=['Na', 'P', 'O'])
    dataset = TrainingSetData(test_slice)
    before = node_count()
    with pytest.raises(MlipError, match=r"has no parameters for \['Fe'\]"):
        run_evaluate_potential(narrow, dataset)
    assert node_count() == before

    # an MLIP reports no extrapolation grade: gamma tracking is refused by the AseMD validator
    builder = CalculationFactory('glassml.ase_md').get_builder()
    builder.code = python_code
    builder.structure = orm.StructureData(ase=test_slice.to_atoms()[0])
    protocol = MDProtocol(stages=[NVT(300.0, 0.002)], timestep=0.001, gamma=GammaTracking())
    builder.protocol = orm.Dict(protocol.to_dict())
    builder.potential = chgnet_potential
    before = node_count()
    with pytest.raises(ValueError, match='an MLIP has no extrapolation grade'):
        run_get_node(builder)
    assert node_count() == before


# -- the study recipe kind ---------------------------------------------------------------------------------------
NAPSO = 'napso.yaml'


def _napso_recipe(tmp_path, comparison: str):
    import pathlib
    import re

    from aiida_glassml.common.recipe import read_recipe

    text = (pathlib.Path(__file__).resolve().parents[2] / 'workflows' / NAPSO).read_text()
    text = re.sub(r'\ncomparison:\n(  .*\n)+', '\ncomparison:\n' + comparison, text)
    path = tmp_path / NAPSO
    path.write_text(text)
    return path, read_recipe(path)


def test_recipe_mlip_kind(aiida_profile, tmp_path, node_count):
    """`{mlip: chgnet}` and `{mlip: sevennet, kwargs: {model: 7net-0}}`: checked when read, resolved to an ASE
    calculator that loads the installed weights; bad kinds name the line; the `calculator:` form still works."""
    from aiida_glassml.calculations.ase_md import _validate_calculator
    from aiida_glassml.common.recipe import RecipeError, study_elements
    from aiida_glassml.workflows.study import resolve_potential

    comparison = ('  chgnet: {mlip: chgnet}\n  sevennet: {mlip: sevennet, kwargs: {model: 7net-0}}\n'
                  "  direct: {calculator: 'chgnet.model.dynamics:CHGNetCalculator'}\n")
    _, recipe = _napso_recipe(tmp_path, comparison)
    elements = study_elements(recipe)
    before = node_count()
    node, calculator, engine = resolve_potential(recipe, ('comparison', 'chgnet'), recipe.data['comparison']['chgnet'],
                                                 elements)  # fmt: skip
    # the node is what the benchmark evaluates (unstored until the study is built); the calculator runs the MD
    assert isinstance(node, MlipPotentialData) and not node.is_stored and engine == 'ase'
    assert calculator == {'name': 'aiida_glassml.common.mlip:shipped_calculator', 'kwargs': {'family': 'chgnet'}}
    assert _validate_calculator(orm.Dict(calculator)) is None
    built = mlip.import_object(calculator['name'])(**calculator['kwargs'])
    assert type(built).__name__ == 'CHGNetCalculator' and built.version == '0.3.0'
    _, seven, _ = resolve_potential(recipe, ('comparison', 'sevennet'), recipe.data['comparison']['sevennet'], elements)
    assert seven['kwargs'] == {'family': 'sevennet', 'model': '7net-0'}
    _, direct, _ = resolve_potential(recipe, ('comparison', 'direct'), recipe.data['comparison']['direct'], elements)
    assert direct == {'name': 'chgnet.model.dynamics:CHGNetCalculator', 'kwargs': {}}
    assert node_count() == before

    for line, message in [
        ('  mace: {mlip: mace}\n', r"`comparison\.mace\.mlip`: 'mace' is not one of chgnet, sevennet"),
        ('  mf: {mlip: sevennet, kwargs: {model: 7net-mf-0}}\n', r'`comparison\.mf\.kwargs`: 7net-mf-0 is multi-fidelity'),
        ('  omni: {mlip: sevennet, kwargs: {model: 7net-omni}}\n', r"sevennet ships no model '7net-omni'"),
        ('  big: {mlip: chgnet, engine: lammps}\n', r'`comparison\.big\.engine`: an MLIP runs through its ASE calculator'),
    ]:  # fmt: skip
        with pytest.raises(RecipeError, match=message) as info:
            _napso_recipe(tmp_path, line)
        assert str(info.value).startswith(f'{tmp_path / NAPSO}:')

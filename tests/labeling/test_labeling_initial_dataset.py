"""InitialDatasetWorkChain with real Quantum ESPRESSO: a seeded random SiO2 packing (9 atoms) plus a given
β-cristobalite cell, AIMD-labelled into one TrainingSetData."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.protocols import ProtocolError
from aiida_glassml.workflows.initial_dataset import InitialDatasetWorkChain

SIO2 = {'units': ['SiO2'], 'fractions': [1.0], 'oxidation_states': {'Si': 4}}


@pytest.mark.slow
def test_initial_dataset_qe(pw_code, qe_pseudo_family, sio2_structure):
    builder = InitialDatasetWorkChain.get_builder_from_protocol(
        pw_code, engine='qe', protocol='fast', compositions={'sio2': SIO2}, structures={'cristobalite': sio2_structure},
        overrides={'structure_settings': {'n_atoms': 9, 'density': 2.2},
                   'label': {'aimd': {'steps': 2, 'sample_every': 1}}},
        pseudo_family=qe_pseudo_family.label,
    )  # fmt: skip
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert sorted(node.outputs.structures) == ['cristobalite', 'sio2_seed1']
    random = node.outputs.structures.sio2_seed1
    assert random.get_ase().get_chemical_formula() == 'O6Si3'
    frames = node.outputs.training_set.get_frameset()
    assert frames.n_frames == 6  # 2 structures x (start + 2 steps)
    assert sorted(frames.n_atoms.tolist()) == [6, 6, 6, 9, 9, 9]
    assert {m['sample_type'] for m in frames.metadata} == {'aimd'}
    assert {m['composition'] for m in frames.metadata} == {'SiO2'}
    # Random packings are hard for the SCF: a calc without frames (pw.x stops the MD at an unconverged first SCF) is
    # restarted with smearing by LabelPwBaseWorkChain and listed in the report; none is dropped silently.
    calcs = {n.uuid for n in node.called_descendants if isinstance(n, orm.CalcJobNode)}
    sources = {m['source_uuid'] for m in frames.metadata}
    reported = {failure['uuid'] for failure in node.outputs.report['failed']}
    assert sources <= calcs and calcs == sources | reported
    # The random structure comes from the structures calcfunction: provenance back to composition and seed.
    assert random.creator.process_label == 'random_structure'


def test_initial_dataset_bad_input(aiida_localhost, node_count):
    from aiida_glassml.structures import StructureGenerationError

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/usr/bin/cp2k', label='cp2k-id').store()
    before = node_count()
    with pytest.raises(LabelingInputError, match='nothing to label'):
        InitialDatasetWorkChain.get_builder_from_protocol(code, engine='cp2k')
    with pytest.raises(StructureGenerationError, match='no oxidation state for Si'):
        InitialDatasetWorkChain.get_builder_from_protocol(code, compositions={'sio2': {'units': ['SiO2'], 'fractions': [1.0]}})
    napo3 = {'napo3': {'units': ['Na2O', 'P2O5'], 'fractions': [0.5, 0.5]}}
    small = {'structure_settings': {'n_atoms': 20}}
    with pytest.raises(ProtocolError, match='unknown override key `aimd.temp`'):
        InitialDatasetWorkChain.get_builder_from_protocol(
            code, compositions=napo3, overrides={**small, 'label': {'aimd': {'temp': 300}}}
        )
    with pytest.raises(ProtocolError, match='unknown override key `seed`; known keys here: label, label_protocol'):
        InitialDatasetWorkChain.get_builder_from_protocol(code, compositions=napo3, overrides={**small, 'seed': [2]})
    with pytest.raises(ProtocolError, match='unknown protocol `quick`'):
        InitialDatasetWorkChain.get_builder_from_protocol(code, compositions=napo3, protocol='quick')
    with pytest.raises(LabelingInputError, match='temperature must be above 0 K'):
        InitialDatasetWorkChain.get_builder_from_protocol(
            code, compositions=napo3, overrides={**small, 'label': {'aimd': {'temperature': -5.0}}}
        )
    with pytest.raises(LabelingInputError, match='`seeds` is empty'):
        InitialDatasetWorkChain.get_builder_from_protocol(code, compositions=napo3, overrides={**small, 'seeds': []})
    with pytest.raises(StructureGenerationError, match=r'strain factors \[0.8, -1.2\] must be > 0'):
        InitialDatasetWorkChain.get_builder_from_protocol(code, compositions=napo3,
                                                          overrides={**small, 'strains': [0.8, -1.2]})  # fmt: skip
    assert node_count() == before


def test_initial_dataset_protocols(aiida_localhost):
    """fast/balanced/stringent set the packings and the label protocol; the builder carries them."""
    protocols = InitialDatasetWorkChain.get_available_protocols()
    assert list(protocols) == ['fast', 'balanced', 'stringent']
    assert InitialDatasetWorkChain.get_default_protocol() == 'balanced'
    fast = InitialDatasetWorkChain.get_protocol_inputs('fast')
    stringent = InitialDatasetWorkChain.get_protocol_inputs('stringent')
    assert (fast['seeds'], fast['strains'], fast['label_protocol'], fast['label']) == ([1], None, 'fast', {})
    assert len(stringent['seeds']) > len(fast['seeds']) and stringent['label_protocol'] == 'stringent'

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/usr/bin/cp2k', label='cp2k-idp').store()
    builder = InitialDatasetWorkChain.get_builder_from_protocol(
        code, compositions={'napo3': {'units': ['Na2O', 'P2O5'], 'fractions': [0.5, 0.5]}}, protocol='balanced',
        overrides={'structure_settings': {'n_atoms': 20}, 'label': {'aimd': {'steps': 40}}},
    )  # fmt: skip
    random = builder.random.get_dict()
    assert random['seeds'] == [1] and random['strains'] == [0.8, 1.2]  # the packing itself is the 1.0 cell
    assert random['settings'] == {'n_atoms': 20}
    settings = builder.label.settings.get_dict()
    assert settings['aimd']['steps'] == 40 and settings['cp2k']['cutoff'] == 500  # balanced label protocol


def test_initial_dataset_balanced_is_the_nafepo4_study(aiida_localhost):
    """balace.yaml: one packing per composition, strains up to 0.2 (0.8, 1.0, 1.2), 100 steps of 2 fs at 5000 K and
    5 frames per trajectory: the study's 980 frames from 196 trajectories."""
    from aiida_glassml.labeling.frames import sample_steps

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/usr/bin/cp2k', label='cp2k-ids').store()
    napo3 = {'napo3': {'units': ['NaO0.5', 'PO2.5'], 'fractions': [0.5, 0.5]}}
    builder = InitialDatasetWorkChain.get_builder_from_protocol(
        code, compositions=napo3, protocol='balanced', overrides={'structure_settings': {'n_atoms': 20}}
    )
    random = builder.random.get_dict()
    trajectories_per_composition = len(random['seeds']) * (1 + len(random['strains']))
    assert trajectories_per_composition == 3 and sorted([1.0, *random['strains']]) == [0.8, 1.0, 1.2]
    aimd = builder.label.settings.get_dict()['aimd']
    assert (aimd['temperature'], aimd['timestep'], aimd['steps'] * aimd['timestep']) == (5000.0, 2.0, 200.0)
    frames_per_trajectory = len(sample_steps(aimd['steps'], aimd['sample_every']))
    assert frames_per_trajectory == 5 and 196 * frames_per_trajectory == 980
    # the same with the study's strains written out: 1.0 adds no second copy of the packing
    again = InitialDatasetWorkChain.get_builder_from_protocol(
        code, compositions=napo3, protocol='balanced',
        overrides={'structure_settings': {'n_atoms': 20}, 'strains': [1.2, 1.0, 0.8]},
    )  # fmt: skip
    assert again.random.get_dict()['strains'] == [1.2, 0.8]

"""Bad input to the active-learning loop: one clear error, raised before anything is stored."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting.active_learning import ActiveLearningError
from aiida_glassml.protocols import ProtocolError
from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain

from .conftest import NAPO3


@pytest.fixture(scope='module')
def stored(al_codes, reference_potential_yaml, reference_test_set_path, tmp_path_factory):
    """A dataset, the published potential without an active set, and the same potential with one."""
    import shutil
    import subprocess

    import pandas as pd

    from aiida_glassml.workflows.label import level_of_theory_for

    folder = tmp_path_factory.mktemp('asi')
    frames = pd.read_pickle(reference_test_set_path, compression='gzip').sample(60, random_state=0)
    frames.to_pickle(folder / 'frames.pckl.gzip', compression='gzip')
    shutil.copy(reference_potential_yaml, folder / 'p.yaml')
    subprocess.run([al_codes['pace_activeset'].filepath_executable, '-d', 'frames.pckl.gzip', 'p.yaml'], cwd=folder,
                   check=True, capture_output=True)  # fmt: skip
    teacher = AcePotentialData.get_or_create(reference_potential_yaml)
    probe = orm.StructureData(ase=__import__('ase').Atoms('NaPO', positions=[[0, 0, 0], [2, 0, 0], [0, 2, 0]],
                                                          cell=[6, 6, 6], pbc=True))  # fmt: skip
    level = level_of_theory_for('potential', {}, [probe], al_codes['python'], potential=teacher)
    return {
        # labels as if made by the teacher below, so the level check passes for the good builder
        'dataset': TrainingSetData.from_pacemaker_pickle(folder / 'frames.pckl.gzip', level_of_theory=level).store(),
        'unknown_level': TrainingSetData.from_pacemaker_pickle(folder / 'frames.pckl.gzip').store(),
        'no_asi': teacher,
        'with_asi': AcePotentialData.get_or_create(folder / 'p.yaml', asi=folder / 'p.asi'),
    }


def builder_kwargs(al_codes, stored, **kwargs):
    args = dict(dataset=stored['dataset'], compositions={'NaPO3': NAPO3}, potential=stored['with_asi'],
                md_code=al_codes['python'], label_code=al_codes['python'], pacemaker_code=al_codes['pacemaker'],
                label_engine='potential', label_potential=stored['no_asi'], protocol='fast')  # fmt: skip
    args.update(kwargs)
    return args


def test_a_good_builder_validates(al_codes, stored, node_count):
    before = node_count()
    builder = ActiveLearningWorkChain.get_builder_from_protocol(**builder_kwargs(al_codes, stored))
    assert builder.settings['max_select'] == 10 and builder.exploration['md']['gamma_interval'] == 1
    assert node_count() == before


@pytest.mark.parametrize('overrides, kwargs, match', [
    ({'exploration': {'md': {'gamma_lo': 30.0, 'gamma_hi': 2.5}}}, {}, 'gamma_lo .* must be below gamma_hi'),
    ({'settings': {'max_select': 0}}, {}, '`max_select` must be an integer ≥ 1'),
    ({'settings': {'converged_fraction': 0}}, {}, 'converged_fraction'),
    ({'exploration': {'strains': [-1.0]}}, {}, 'exploration.strains'),
    ({'exploration': {'md': {'cooling_rate': -5.0}}}, {}, 'cooling_rate'),
    ({'stability': {'composition': 'NaFePO4'}}, {}, 'stability.composition'),
    ({'settings': {'gamma_lo': 1.0}}, {}, 'unknown override key'),
    ({}, {'compositions': {'NaSiO': {'units': ['Na2O', 'SiO2'], 'fractions': [0.5, 0.5], 'oxidation_states': {'Si': 4}}}},
     r"contain \['Si'\]"),
    ({}, {'potential': 'no_asi'}, 'has no active set .* build one with'),
    ({}, {'dataset': 'unknown_level'}, 'differ in level of theory .* unknown'),
    ({}, {'compositions': {'x': {'units': ['NaPO3'], 'fractions': [0.5]}}}, 'sum to 0.5'),
])  # fmt: skip
def test_bad_input_is_refused_before_anything_is_stored(al_codes, stored, node_count, overrides, kwargs, match):
    for key in ('potential', 'dataset'):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = stored[kwargs[key]]
    before = node_count()
    with pytest.raises((ActiveLearningError, ProtocolError, ValueError), match=match):
        ActiveLearningWorkChain.get_builder_from_protocol(**builder_kwargs(al_codes, stored, **kwargs),
                                                          overrides=overrides)  # fmt: skip
    assert node_count() == before


@pytest.fixture(scope='module')
def oxygen_only_family(aiida_profile, tmp_path_factory):
    """An aiida-pseudo family with only Debian's O pseudopotential: a labelling engine that misses Na and P."""
    import pathlib
    import shutil

    from aiida_pseudo.data.pseudo import UpfData
    from aiida_pseudo.groups.family import PseudoPotentialFamily

    source = pathlib.Path('/usr/share/espresso/pseudo/O.pbe-rrkjus.UPF')
    if not source.exists():
        pytest.skip(f'{source} missing: install quantum-espresso-data')
    folder = tmp_path_factory.mktemp('upf_o')
    shutil.copy(source, folder / 'O.upf')
    return PseudoPotentialFamily.create_from_folder(folder, 'glassml-test/O-only', pseudo_type=UpfData)


def test_a_labelling_engine_that_misses_elements_is_refused(al_codes, stored, oxygen_only_family, node_count):
    before = node_count()
    with pytest.raises(ValueError, match=r"Na.*P|\['Na', 'P'\]"):
        ActiveLearningWorkChain.get_builder_from_protocol(**builder_kwargs(
            al_codes, stored, label_engine='qe', label_code=al_codes['python'], label_potential=None,
            pseudo_family=oxygen_only_family.label))  # fmt: skip
    assert node_count() == before


def test_submitting_bad_inputs_directly_stores_nothing(al_codes, stored, node_count):
    """The same checks run as the inputs validator, so a hand-made builder is refused at launch."""
    builder = ActiveLearningWorkChain.get_builder_from_protocol(**builder_kwargs(al_codes, stored))
    builder.settings = orm.Dict({**builder.settings.get_dict(), 'max_select': 0})
    before = node_count()
    with pytest.raises(ValueError, match='max_select'):
        run_get_node(builder)
    # the new Dict above is stored by the failed launch attempt only if validation ran too late
    assert node_count() == before

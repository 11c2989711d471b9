"""``ActiveSetCalculation`` (``pace_activeset`` as a CalcJob) and ``build_active_set``: an active set for an existing
potential, with provenance to the data it came from; bad input raises before anything is stored."""

import dataclasses

import numpy as np
import pytest
from aiida import orm

from aiida_glassml.calcfunctions.potential import build_active_set
from aiida_glassml.calculations.active_set import ActiveSetCalculation
from aiida_glassml.common.ace import AcePotentialError
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data import AcePotentialData, TrainingSetData
from aiida_glassml.fitting.active_set import activeset_cmdline, validate_active_set_settings
from aiida_glassml.fitting.settings import FitSettingsError


@pytest.fixture
def activeset_code(installed_code):
    return installed_code('pace_activeset', 'glassml.pace_activeset')


@pytest.fixture
def published(reference_potential_yaml, reference_potential_yace, aiida_profile):
    return AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)


def test_activeset_command_line():
    settings = validate_active_set_settings({'all_atoms': True, 'gamma_tolerance': 1.05})
    assert activeset_cmdline(settings, 'data.pckl.gzip', 'potential.yaml') == [
        '-d', 'data.pckl.gzip', '-g', '1.05', '-i', '300', '-a', 'potential.yaml']  # fmt: skip
    with pytest.raises(FitSettingsError, match='gamma_tolerance must be >= 1'):
        validate_active_set_settings({'gamma_tolerance': 0.5})
    with pytest.raises(FitSettingsError, match=r"unknown active-set setting\(s\) \['tolerance'\]"):
        validate_active_set_settings({'tolerance': 1.01})


@pytest.mark.slow
def test_active_set_for_published_potential(published, reference_test_set_path, activeset_code):
    frames = FrameSet.read_pacemaker_pickle(reference_test_set_path).select(range(0, 436, 8))
    dataset = TrainingSetData(frames).store()

    result = build_active_set(published, dataset, orm.Dict({'all_atoms': True}), code=activeset_code)
    assert isinstance(result, AcePotentialData)
    assert result.has_active_set and not published.has_active_set
    assert result.base.attributes.get('sha256_yaml') == published.base.attributes.get('sha256_yaml')
    assert result.base.attributes.get('sha256_yace') == published.base.attributes.get('sha256_yace')
    job = result.creator
    assert job.process_class is ActiveSetCalculation and job.is_finished_ok
    assert job.inputs.potential.uuid == published.uuid and job.inputs.dataset.uuid == dataset.uuid
    assert job.inputs.code.uuid == activeset_code.uuid
    assert {'activeset.out', 'activeset.err'} <= set(job.outputs.retrieved.base.repository.list_object_names())

    calc = result.get_calculator()
    inside = frames.to_atoms()[0]
    inside.calc = calc
    inside.get_potential_energy()
    gamma_inside = calc.results['gamma'].copy()
    squeezed = inside.copy()
    squeezed.set_cell(inside.cell * 0.7, scale_atoms=True)
    squeezed.calc = calc
    squeezed.get_potential_energy()
    gamma_squeezed = calc.results['gamma'].copy()
    # Built on every atom, the set covers its own data up to the MaxVol tolerance; compression extrapolates strongly.
    assert np.max(gamma_inside) <= 1.01 + 1e-6
    assert np.max(gamma_squeezed) > 5.0


@pytest.mark.parametrize(('case', 'error', 'message'), [
    ('uncovered element', AcePotentialError, "also contains ['V']"),
    ('too few environments', FitSettingsError, 'Insufficient atomic environments'),
    ('bad settings', FitSettingsError, 'unknown active-set setting'),
])  # fmt: skip
def test_bad_input_raises_before_storing(published, reference_frames, activeset_code, node_count, case, error,
                                         message):  # fmt: skip
    frames, settings = reference_frames.select(range(0, 436, 8)), {'all_atoms': True}
    if case == 'uncovered element':
        frames = frames.select([0])
        frames = dataclasses.replace(frames, numbers=np.where(np.arange(len(frames.numbers)) == 0, 23, frames.numbers))
    elif case == 'too few environments':
        frames = frames.select(range(12))  # ~190 Fe environments for 248 Fe functions
    else:
        settings = {'tolerance': 1.01}
    dataset = TrainingSetData(frames)  # unstored
    before = node_count()
    with pytest.raises(error) as info:
        build_active_set(published, dataset, settings, code=activeset_code)
    assert message in str(info.value)
    # the CalcJob's own validator says the same when it is run directly
    builder = ActiveSetCalculation.get_builder()
    builder.code, builder.potential, builder.dataset = activeset_code, published, dataset
    builder.settings = orm.Dict(settings)
    with pytest.raises(ValueError, match='Insufficient|also contains|unknown active-set'):
        from aiida.engine import run

        run(builder)
    assert node_count() == before

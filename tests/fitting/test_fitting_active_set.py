"""``build_active_set``: an active set for an existing potential, with provenance to the data it came from."""

import numpy as np
import pytest

from aiida_glassml.calcfunctions.potential import build_active_set
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data import AcePotentialData, TrainingSetData


@pytest.mark.slow
def test_active_set_for_published_potential(reference_potential_yaml, reference_potential_yace,
                                            reference_test_set_path, aiida_profile):  # fmt: skip
    potential = AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)
    frames = FrameSet.read_pacemaker_pickle(reference_test_set_path).select(range(0, 436, 8))
    dataset = TrainingSetData(frames).store()
    from aiida import orm

    result = build_active_set(potential, dataset, orm.Dict({'all_atoms': True}))
    assert result.has_active_set and not potential.has_active_set
    assert result.base.attributes.get('sha256_yaml') == potential.base.attributes.get('sha256_yaml')
    inputs = {link.node.uuid for link in result.creator.base.links.get_incoming().all()}
    assert {potential.uuid, dataset.uuid} <= inputs

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

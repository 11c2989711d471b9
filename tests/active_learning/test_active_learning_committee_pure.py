"""The committee selector without AiiDA: σ_F math, the σ window, the selection order and the committee checks."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_glassml.fitting import active_learning as al
from aiida_glassml.md.committee import CommitteeError, check_committee, force_deviation, max_force_deviation
from aiida_glassml.md.protocol import ForceDeviationTracking, MDProtocol, MDProtocolError, exploration, stability_test


def test_force_deviation_is_the_per_atom_population_deviation():
    """Two members that disagree by ±d on one component of atom 1: σ_1 = d, σ_0 = 0; by hand for three members."""
    forces = np.zeros((2, 3, 3))
    forces[0, 1, 0], forces[1, 1, 0] = 0.5, -0.5
    assert force_deviation(forces) == pytest.approx([0.0, 0.5, 0.0])
    three = np.array([[[1.0, 0, 0]], [[0, 2.0, 0]], [[0, 0, 0.0]]])  # mean (1/3, 2/3, 0)
    expected = np.sqrt(np.mean([np.sum((f - three.mean(axis=0)[0]) ** 2) for f in three[:, 0]]))
    assert max_force_deviation(three) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    random = rng.normal(size=(4, 10, 3))
    by_loop = [np.sqrt(np.mean([np.sum((random[k, i] - random[:, i].mean(axis=0)) ** 2) for k in range(4)]))
               for i in range(10)]  # fmt: skip
    assert force_deviation(random) == pytest.approx(by_loop)
    with pytest.raises(CommitteeError, match='at least two members'):
        force_deviation(random[:1])


def test_check_committee_refuses_mixed_kinds_and_element_sets():
    check_committee({'a': ('ace', ['Na', 'P', 'O']), 'b': ('ace', ['O', 'P', 'Na'])})
    with pytest.raises(CommitteeError, match='mixes element sets'):
        check_committee({'a': ('ace', ['Na', 'P', 'O']), 'b': ('ace', ['Na', 'Fe', 'P', 'O'])})
    with pytest.raises(CommitteeError, match='mixes potential kinds'):
        check_committee({'a': ('ace', ['Na']), 'b': ('mlip:mace.calculators:MACECalculator', ['Na'])})
    with pytest.raises(CommitteeError, match='at least two'):
        check_committee({'a': ('ace', ['Na'])})


def test_selection_keeps_the_window_most_uncertain_first():
    sigma = [0.5, 2.0, 4.9, 5.0, 7.0, 1.0, 3.0, 2.0, float('nan')]
    # strictly inside (1, 5); 5.0 and 7.0 (runs about to break) and 1.0 (on the edge) are left out; ties keep order
    assert al.select_by_force_deviation(sigma, 1.0, 5.0, max_select=10) == [2, 6, 1, 7]
    assert al.select_by_force_deviation(sigma, 1.0, 5.0, max_select=2) == [2, 6]
    assert al.select_by_force_deviation(sigma, 8.0, 9.0, max_select=2) == []


def test_sigma_window_and_committee_settings_are_checked():
    al.check_sigma_window(1.0, 5.0)
    with pytest.raises(al.ActiveLearningError, match=r'sigma_lo \(5.0 eV/Å\) must be below sigma_hi \(1.0 eV/Å\)'):
        al.check_sigma_window(5.0, 1.0)
    with pytest.raises(al.ActiveLearningError, match='must be below'):
        al.check_sigma_window(2.0, 2.0)
    with pytest.raises(al.ActiveLearningError, match='positive'):
        al.check_sigma_window(0.0, 2.0)
    settings = al.validate_loop_settings({'selector': 'force_deviation'})
    assert (settings['committee_size'], settings['committee_holdout']) == (4, 0.1)
    assert al.validate_loop_settings()['selector'] == 'gamma'
    for bad, match in (({'selector': 'variance'}, 'selector'), ({'committee_size': 1}, 'committee_size'),
                       ({'committee_holdout': 0.0}, 'committee_holdout')):  # fmt: skip
        with pytest.raises(al.ActiveLearningError, match=match):
            al.validate_loop_settings(bad)
    assert len({al.member_seed(1, member) for member in range(4)}) == 4


def test_force_deviation_protocols():
    """The exploration and stability presets track σ_F,max with the study's window; protocols round-trip."""
    protocol = exploration(tracking='force_deviation', hold_time=0.01, cooling_rate=1e5)
    assert protocol.gamma is None and protocol.tracking == 'force_deviation'
    assert protocol.force_deviation == ForceDeviationTracking(interval=1, sigma_lo=1.0, sigma_hi=5.0)
    assert MDProtocol.from_dict(protocol.to_dict()) == protocol
    assert 'force_deviation' not in exploration().to_dict()  # gamma runs keep their stored layout
    assert stability_test(tracking='force_deviation', sigma_hi=4.0).force_deviation.sigma_hi == 4.0
    with pytest.raises(MDProtocolError, match='sigma_lo .* must be below sigma_hi'):
        exploration(tracking='force_deviation', sigma_lo=5.0, sigma_hi=1.0)
    with pytest.raises(MDProtocolError, match='not both'):
        MDProtocol(stages=protocol.stages, gamma=exploration().gamma, force_deviation=protocol.force_deviation).validate()
    with pytest.raises(MDProtocolError, match='unknown uncertainty tracking'):
        exploration(tracking='variance')


def test_classify_and_stability_know_the_committee_halt():
    assert al.classify_run(False, 351, 6.0, 1.0) == 'halted'
    assert al.classify_run(True, 0, 0.5, 1.0) == 'quiet' and al.classify_run(True, 0, 1.5, 1.0) == 'extrapolating'
    verdict = al.stability_verdict([0.0, 0.01], [-10.0, -10.0], 10, 'force_deviation_halt', 351, halt_time=0.01)
    assert not verdict['survived'] and verdict['reason'] == 'committee force deviation exceeded sigma_hi'

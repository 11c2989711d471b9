"""Calcfunctions of the structure half: partial S(Q), T(r)/G(r), R_χ against an experimental curve, oxidation states
from magnetic moments; the ``analyse structure --experimental`` CLI; bad input storing nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from click.testing import CliRunner

from aiida_glassml.analysis import AnalysisInputError, compute_rdf, neutron_structure_factor
from aiida_glassml.analysis.scattering import NEUTRON_SCATTERING_LENGTHS
from aiida_glassml.cli import cli

Q_GRID = np.arange(0.3, 20.0 + 1e-9, 0.02)  # the calcfunction's default grid (q_max 20, dQ 0.02)
SCALE = 1.1  # experiment = SCALE × model gives R_χ = (SCALE − 1) / SCALE exactly on the model grid


@pytest.fixture(scope='module')
def scaled_experiment(teter_glass, tmp_path_factory):
    """A fake experimental neutron S(Q): the model's own S(Q) × 1.1 on Q = 1–15 Å⁻¹, written as a two-column file."""
    _, s = neutron_structure_factor(compute_rdf(teter_glass, dr=0.02), Q_GRID)
    mask = (Q_GRID > 0.99) & (Q_GRID < 15.01)
    path = tmp_path_factory.mktemp('experiment') / 'sq_neutron.dat'
    np.savetxt(path, np.column_stack([Q_GRID[mask], SCALE * s[mask]]), header='Q (1/A)  S(Q)')
    return path, Q_GRID[mask], SCALE * s[mask]


@pytest.fixture(scope='module')
def stored_analysis(aiida_profile, teter_glass, scaled_experiment):
    from aiida.orm import StructureData

    from aiida_glassml.calcfunctions.analysis_structure import experimental_curve_node, run_structure_analysis

    _, q, s = scaled_experiment
    structure = StructureData(ase=teter_glass)
    experimental = experimental_curve_node(q, s, 'S_neutron', source='scaled model')
    outputs = run_structure_analysis(structure, {}, experimental, {'quantity': 'S_neutron', 'x_range': [2.0, 12.0]})
    return structure, experimental, outputs


def test_partial_structure_factors_and_real_space_are_stored(stored_analysis):
    structure, _, outputs = stored_analysis
    partial = outputs['partial_structure_factors']
    assert partial.creator.inputs.structure.uuid == structure.uuid
    assert partial.get_x()[0] == 'Q' and partial.get_x()[2] == '1/angstrom'
    _, q, _ = partial.get_x()
    curves = {name: values for name, values, _ in partial.get_y()}
    assert set(partial.base.attributes.get('pairs')) == {'Fe-Fe', 'Fe-Na', 'Fe-O', 'Fe-P', 'Na-Na', 'Na-O', 'Na-P',
                                                         'O-O', 'P-O', 'P-P'}  # fmt: skip
    # the Faber–Ziman weighted sum of the stored partials is the stored total neutron S(Q)
    composition = structure.get_ase().get_chemical_symbols()
    c = {e: composition.count(e) / len(composition) for e in set(composition)}
    b = {e: NEUTRON_SCATTERING_LENGTHS[e] for e in c}
    total = sum((1 if a == bb else 2) * c[a] * c[bb] * b[a] * b[bb] * curves[f'S_{a}_{bb}']
                for a, bb in (key.split('-') for key in partial.base.attributes.get('pairs')))  # fmt: skip
    total /= sum(c[e] * b[e] for e in c) ** 2
    neutron = dict((name, y) for name, y, _ in outputs['structure_factor'].get_y())['S_neutron']
    np.testing.assert_allclose(total, neutron, atol=1e-10)
    for values in curves.values():
        assert np.isfinite(values).all() and abs(values[q > 15].mean() - 1.0) < 0.1
    real_space = outputs['real_space']
    _, r, r_unit = real_space.get_x()
    assert r_unit == 'angstrom'
    functions = {name: (values, unit) for name, values, unit in real_space.get_y()}
    assert functions['T_neutron'][1] == '1/angstrom^2' and functions['G_xray'][1] == '1/angstrom^2'
    rho = real_space.base.attributes.get('number_density')
    assert rho == pytest.approx(len(composition) / structure.get_cell_volume())
    below_contact = r < 1.2  # no atom pairs: g = 0, T = 0 and G = −4πρ₀r
    np.testing.assert_allclose(functions['G_neutron'][0][below_contact], -4 * np.pi * rho * r[below_contact], rtol=1e-9)
    np.testing.assert_allclose(functions['T_neutron'][0][below_contact], 0.0, atol=1e-12)
    for key in ('partial_structure_factors_figure', 'real_space_figure'):
        with outputs[key].open(mode='rb') as handle:
            assert handle.read(8) == b'\x89PNG\r\n\x1a\n'


def test_r_chi_of_a_scaled_model_is_known(stored_analysis, scaled_experiment):
    _, experimental, outputs = stored_analysis
    _, q, _ = scaled_experiment
    r_chi = outputs['r_chi']
    assert r_chi['r_chi'] == pytest.approx((SCALE - 1) / SCALE, rel=1e-9)
    assert r_chi['x_range'] == [2.0, 12.0] and r_chi['x_unit'] == '1/angstrom'
    assert r_chi['n_points'] == ((q >= 2.0) & (q <= 12.0)).sum() > 400
    assert r_chi.creator.inputs.experimental.uuid == experimental.uuid
    assert r_chi.creator.inputs.model.uuid == outputs['structure_factor'].uuid
    assert outputs['r_chi_figure'].creator.inputs.r_chi.uuid == r_chi.uuid


def test_cli_r_chi_without_and_with_store(scaled_experiment, reference_glass_paths, aiida_profile, node_count):
    from aiida.orm import load_node

    path, _, _ = scaled_experiment
    runner = CliRunner()
    glass = str(reference_glass_paths['Teter_300K_1'])
    result = runner.invoke(cli, ['analyse', 'structure', glass, '--experimental', str(path), '--q-range', '2', '12',
                                 '--json'])  # fmt: skip
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)['r_chi']
    assert entry['r_chi'] == pytest.approx((SCALE - 1) / SCALE, rel=1e-9) and entry['quantity'] == 'S_neutron'
    text = runner.invoke(cli, ['analyse', 'structure', glass, '--experimental', str(path)])
    assert 'R_chi(S_neutron) = 0.0909 (9.09 %) over 1-15' in text.output
    # range beyond the model's Q grid: refused before anything is stored
    before = node_count()
    bad = runner.invoke(cli, ['analyse', 'structure', glass, '--experimental', str(path), '--q-range', '2', '40',
                              '--store'])  # fmt: skip
    assert bad.exit_code == 1 and 'reaches outside the model S_neutron' in bad.output
    assert node_count() == before
    stored = runner.invoke(cli, ['analyse', 'structure', glass, '--experimental', str(path), '--quantity', 'S_neutron',
                                 '--store', '--json'])  # fmt: skip
    assert stored.exit_code == 0, stored.output
    payload = json.loads(stored.output)
    r_chi = load_node(payload['stored']['r_chi'])
    assert r_chi['r_chi'] == pytest.approx((SCALE - 1) / SCALE, rel=1e-9)
    assert r_chi.creator.inputs.experimental.pk == payload['stored']['experimental']
    assert load_node(payload['stored']['experimental']).base.attributes.get('source') == 'sq_neutron.dat'


def test_cli_bad_experimental_file(tmp_path, reference_glass_paths):
    runner = CliRunner()
    glass = str(reference_glass_paths['Teter_300K_1'])
    one_row = tmp_path / 'one.dat'
    one_row.write_text('# Q S\n1.0 1.0\n')
    result = runner.invoke(cli, ['analyse', 'structure', glass, '--experimental', str(one_row)])
    assert result.exit_code == 1 and 'needs at least two x y rows' in result.output
    result = runner.invoke(cli, ['analyse', 'structure', glass, '--q-range', '1', '2'])
    assert result.exit_code == 1 and '--q-range needs --experimental' in result.output


@pytest.mark.parametrize(
    'parameters, message',
    [
        ({'quantity': 'S_magnetic'}, 'is not computed; choose one of'),
        ({'x_range': [5.0, 2.0]}, 'is empty; give LOWER < UPPER'),
        ({'x_range': [30.0, 40.0]}, 'fewer than two experimental points lie in'),
        ({'colour': 'red'}, "unknown R_chi parameters ['colour']"),
    ],
)
def test_bad_r_chi_parameters_store_nothing(aiida_profile, teter_glass, scaled_experiment, node_count, parameters,
                                            message):  # fmt: skip
    from aiida.orm import StructureData

    from aiida_glassml.calcfunctions.analysis_structure import experimental_curve_node, run_structure_analysis

    _, q, s = scaled_experiment
    before = node_count()
    with pytest.raises(AnalysisInputError, match=message.replace('[', r'\[').replace(']', r'\]')):
        run_structure_analysis(StructureData(ase=teter_glass), {}, experimental_curve_node(q, s, 'S_neutron'),
                               parameters)  # fmt: skip
    assert node_count() == before


# ------------------------------------------------------------------------------------------------ oxidation states

V_MOMENTS = [  # |m| of the four V atoms per frame (sign ignored): V5+, V4+, V3+, and one in no bin
    [0.05, -1.02, 2.1, 0.5],
    [0.0, 0.9, 0.95, 1.9],
    None,  # a frame without moments
]


def _frame(seed: int, moments) -> Atoms:
    rng = np.random.default_rng(seed)
    atoms = Atoms(['V'] * 4 + ['Fe'] * 2 + ['O'] * 6, positions=rng.random((12, 3)) * 8.0, cell=[8, 8, 8], pbc=True)
    results = {'energy': -50.0 - seed, 'forces': rng.normal(size=(12, 3))}
    if moments is not None:
        results['magmoms'] = np.array(list(moments) + [3.7, -4.3] + [0.01] * 6)
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


@pytest.fixture
def magnetic_training_set(aiida_profile):
    from aiida_glassml.data.training_set import TrainingSetData

    return TrainingSetData.from_atoms([_frame(i, m) for i, m in enumerate(V_MOMENTS)]).store()


def test_oxidation_states_with_the_thesis_vanadium_bins(magnetic_training_set):
    from aiida_glassml.calcfunctions.analysis_structure import run_oxidation_states

    outputs = run_oxidation_states(magnetic_training_set)
    summary = outputs['oxidation_states'].get_dict()
    assert summary['element'] == 'V'
    assert summary['bins'] == [[0.0, 0.2, 5], [0.8, 1.2, 4], [1.8, 2.2, 3]]
    assert summary['per_frame'] == [
        {'5': 1, '4': 1, '3': 1, 'unassigned': 1},
        {'5': 1, '4': 2, '3': 1, 'unassigned': 0},
        None,
    ]
    assert summary['totals'] == {'5': 2, '4': 3, '3': 2, 'unassigned': 1}
    assert summary['frames_without_magmoms'] == [2]
    counts = outputs['oxidation_state_counts']
    assert counts.base.attributes.get('columns') == ['5', '4', '3', 'unassigned']
    np.testing.assert_array_equal(counts.get_array('counts'), [[1, 1, 1, 1], [1, 2, 1, 0], [0, 0, 0, 0]])
    assert counts.get_array('has_magmoms').tolist() == [True, True, False]
    assert counts.creator.inputs.training_set.uuid == magnetic_training_set.uuid


def test_oxidation_states_of_iron_default_and_custom_bins(magnetic_training_set):
    from aiida_glassml.analysis import DEFAULT_FE_BINS
    from aiida_glassml.calcfunctions.analysis_structure import run_oxidation_states

    iron = run_oxidation_states(magnetic_training_set, {'element': 'Fe'})['oxidation_states'].get_dict()
    assert iron['bins'] == [list(b) for b in DEFAULT_FE_BINS]
    assert iron['per_frame'][0] == {'2': 1, '3': 1, 'unassigned': 0}
    custom = run_oxidation_states(magnetic_training_set, {'element': 'Fe', 'bins': [[4.0, 5.0, 3]]})
    assert custom['oxidation_states']['totals'] == {'3': 2, 'unassigned': 2}


@pytest.mark.parametrize(
    'case, message',
    [
        ('no_magmoms', 'has no magnetic moments in any frame'),
        ('absent_element', "element 'Mn' is not in the training set"),
        ('no_default_bins', 'no default magnetic-moment bins for O'),
        ('overlapping_bins', 'overlap; make each moment fall in one bin'),
        ('malformed_bins', 'are not (lower, upper, state) triples'),
        ('unknown_parameter', "unknown oxidation-state parameters ['spin']"),
    ],
)
def test_bad_oxidation_input_stores_nothing(magnetic_training_set, node_count, case, message):
    from aiida_glassml.calcfunctions.analysis_structure import run_oxidation_states
    from aiida_glassml.data.training_set import TrainingSetData

    training_set, parameters = magnetic_training_set, {}
    if case == 'no_magmoms':
        training_set = TrainingSetData.from_atoms([_frame(0, None)]).store()
    elif case == 'absent_element':
        parameters = {'element': 'Mn', 'bins': [[0, 1, 2]]}
    elif case == 'no_default_bins':
        parameters = {'element': 'O'}
    elif case == 'overlapping_bins':
        parameters = {'bins': [[0.0, 1.0, 5], [0.9, 1.5, 4]]}
    elif case == 'malformed_bins':
        parameters = {'bins': [[0.0, 1.0]]}
    elif case == 'unknown_parameter':
        parameters = {'spin': 'up'}
    before = node_count()
    with pytest.raises(AnalysisInputError, match=message.replace('[', r'\[').replace(']', r'\]').replace('(', r'\(')
                       .replace(')', r'\)')):  # fmt: skip
        run_oxidation_states(training_set, parameters)
    assert node_count() == before

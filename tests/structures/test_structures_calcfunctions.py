"""The provenance layer: calcfunctions, validation before storing, and the composition-grid group."""

import pytest
from aiida import orm

from aiida_glassml.calcfunctions.structures import (
    generate_composition_grid_structures,
    random_structure,
    run_random_structure,
    run_strained_copies,
    strained_copies,
)
from aiida_glassml.structures import StructureGenerationError, min_distance_violations

NAFEPO4 = {'units': ['Na2O', 'FeO', 'P2O5'], 'fractions': [0.25, 0.5, 0.25]}
SETTINGS = {'n_atoms': 98, 'density': 3.38}


def test_random_structure_records_composition_seed_and_density(aiida_profile_clean):
    structure = run_random_structure(NAFEPO4, 7, SETTINGS)
    assert structure.is_stored
    attributes = structure.base.attributes
    assert attributes.get('composition')['units'] == NAFEPO4['units']
    assert attributes.get('seed') == 7
    assert attributes.get('density') == pytest.approx(3.38)
    assert attributes.get('density_source') == 'user'
    assert attributes.get('integer_formula')['formula'] == 'Na14Fe14P14O56'
    assert len(structure.sites) == 98
    assert min_distance_violations(structure.get_ase(), 1.7) == []
    creator = structure.creator
    assert creator.process_label == 'random_structure'
    assert creator.inputs.seed.value == 7
    assert creator.inputs.composition.get_dict()['fractions'] == NAFEPO4['fractions']


def test_calcfunction_is_reproducible_from_its_inputs(aiida_profile_clean):
    first = random_structure(orm.Dict(NAFEPO4), orm.Int(3), orm.Dict(SETTINGS))
    second = random_structure(orm.Dict(NAFEPO4), orm.Int(3), orm.Dict(SETTINGS))
    assert first.uuid != second.uuid
    assert first.get_ase().positions.tolist() == second.get_ase().positions.tolist()


def test_strained_copies_are_linked_and_rescale_density(aiida_profile_clean):
    structure = run_random_structure(NAFEPO4, 1, SETTINGS)
    copies = run_strained_copies(structure, (0.8, 1.0, 1.2))
    assert sorted(copies) == ['strain_0_80', 'strain_1_00', 'strain_1_20']
    for factor, key in ((0.8, 'strain_0_80'), (1.0, 'strain_1_00'), (1.2, 'strain_1_20')):
        copy = copies[key]
        assert copy.creator.inputs.structure.uuid == structure.uuid
        assert copy.base.attributes.get('strain_factor') == factor
        assert copy.base.attributes.get('density') == pytest.approx(3.38 / factor**3)
        assert copy.get_cell_volume() == pytest.approx(structure.get_cell_volume() * factor**3)
    default = strained_copies(structure, orm.Dict({}))
    assert sorted(default) == ['strain_0_80', 'strain_1_00', 'strain_1_20']


def test_grid_puts_every_structure_in_one_labelled_group(aiida_profile_clean):
    calls = []
    group, nodes = generate_composition_grid_structures(
        ['Na2O', 'P2O5'], 0.5, seed=10, settings={'n_atoms': 40, 'density': 2.5}, strains=[0.9, 1.1],
        progress=lambda i, n, node: calls.append((i, n)),
    )  # fmt: skip
    assert group.label == 'glassml/structures/Na2O-P2O5/step0.5/atoms40/seed10'
    assert len(nodes) == 6 and group.count() == 6
    assert calls == [(1, 3), (2, 3), (3, 3)]
    seeds = sorted({n.base.attributes.get('seed') for n in nodes})
    assert seeds == [10, 11, 12]
    fractions = sorted(tuple(n.base.attributes.get('composition')['fractions']) for n in nodes[::2])
    assert fractions == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]


# Bad input: error before anything is stored.

BAD_INPUTS = {
    'negative fraction': ({'units': ['Na2O', 'FeO', 'P2O5'], 'fractions': [0.6, -0.1, 0.5]}, SETTINGS,
                          'negative mole fraction'),
    'missing fractions': ({'units': ['Na2O', 'FeO', 'P2O5']}, SETTINGS, 'no mole fractions given'),
    'sum not one': ({'units': ['Na2O', 'FeO', 'P2O5'], 'fractions': [0.3, 0.5, 0.25]}, SETTINGS, 'sum to 1.05'),
    'unknown unit': ({'units': ['Na2O', 'Fe-O', 'P2O5'], 'fractions': [0.25, 0.5, 0.25]}, SETTINGS,
                     'cannot parse formula unit'),
    'unknown element': ({'units': ['Na2O', 'Qq', 'P2O5'], 'fractions': [0.25, 0.5, 0.25]}, SETTINGS,
                        "unknown element 'Qq'"),
    'not neutral': ({**NAFEPO4, 'oxidation_states': {'Fe': 3}}, SETTINGS, 'net charge +0.5 e'),
    'zero density': (NAFEPO4, {'n_atoms': 98, 'density': 0.0}, 'must be > 0'),
    'negative density': (NAFEPO4, {'n_atoms': 98, 'density': -1.0}, 'must be > 0'),
    'infeasible packing': (NAFEPO4, {'n_atoms': 98, 'density': 3.38, 'min_distance': 2.6}, 'infeasible packing'),
    'too few atoms': (NAFEPO4, {'n_atoms': 3, 'density': 3.38}, '3 atoms are too few'),
}  # fmt: skip


@pytest.mark.parametrize('case', list(BAD_INPUTS))
def test_bad_input_stores_nothing(aiida_profile_clean, node_count, case):
    composition, settings, message = BAD_INPUTS[case]
    before = node_count()
    with pytest.raises(StructureGenerationError, match=message.replace('+', r'\+').replace('.', r'\.')):
        run_random_structure(composition, 1, settings)
    assert node_count() == before


def test_bad_grid_point_stores_nothing(aiida_profile_clean, node_count):
    before = node_count()
    with pytest.raises(StructureGenerationError, match=r'grid point 0 .* atoms are too few'):
        generate_composition_grid_structures(['Na2O', 'FeO', 'P2O5'], 0.1, settings={'n_atoms': 3})
    assert node_count() == before
    assert orm.QueryBuilder().append(orm.Group).count() == 0


def test_bad_strain_factors_store_nothing(aiida_profile_clean, node_count):
    structure = run_random_structure(NAFEPO4, 1, SETTINGS)
    before = node_count()
    with pytest.raises(StructureGenerationError, match='must be > 0'):
        run_strained_copies(structure, (0.8, 0.0))
    assert node_count() == before


def test_existing_group_label_stores_nothing(aiida_profile_clean, node_count):
    orm.Group(label='taken').store()
    before = node_count()
    with pytest.raises(StructureGenerationError, match="group 'taken' already exists"):
        generate_composition_grid_structures(['Na2O', 'P2O5'], 0.5, settings={'n_atoms': 40}, group_label='taken')
    assert node_count() == before


def test_run_random_structure_packs_once(aiida_profile_clean, monkeypatch):
    """The up-front checks do not pack: only the calcfunction does (a 3003-atom grid is not packed twice)."""
    from aiida_glassml.structures import generate, packing

    calls = []
    original = packing.random_packing
    monkeypatch.setattr(generate, 'random_packing', lambda *a, **k: calls.append(1) or original(*a, **k))
    structure = run_random_structure(NAFEPO4, 3, SETTINGS)
    assert calls == [1]
    assert len(structure.sites) == 98


def test_packing_that_stalls_after_the_checks_fails_the_calcfunction_clearly(aiida_profile_clean):
    """Dense enough to stall but below the fast-fail limit: the cheap checks pass, the calcfunction node is stored as
    failed (exit 310, the reason as message) and the runner raises naming it."""
    settings = {'n_atoms': 98, 'density': 3.38, 'min_distance': 2.0, 'max_attempts': 5}
    with pytest.raises(StructureGenerationError, match=r'random packing failed: 5 attempts .* stalled; '
                                                       r'random_structure<\d+> is stored as failed') as info:
        run_random_structure(NAFEPO4, 1, settings)
    failed = orm.QueryBuilder().append(orm.CalcFunctionNode).one()[0]
    assert f'random_structure<{failed.pk}>' in str(info.value)
    assert failed.exit_status == 310 and 'lower the density or the minimum distance' in failed.exit_message
    assert not failed.base.links.get_outgoing().all()

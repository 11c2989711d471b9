"""Study recipes: the shipped recipes validate (a dry run builds every process builder of every stage) and each bad
input is refused with one line naming the recipe line, before anything is stored."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from aiida_glassml.common.recipe import RecipeError, read_recipe

WORKFLOWS = pathlib.Path(__file__).resolve().parents[2] / 'workflows'
GOOD = textwrap.dedent("""\
    study: tiny
    compositions:
      NaPO3: {units: [Na2O, P2O5], fractions: [0.5, 0.5]}
    labels: {engine: cp2k, protocol: fast}
    glasses: {structure: {n_atoms: 40}, engine: ase, protocol: fast}
    diffusion: {engine: ase, protocol: fast, temperatures: [1500, 2000]}
    """)


def recipe_error(text: str) -> str:
    with pytest.raises(RecipeError) as info:
        read_recipe('bad.yaml', text)
    message = str(info.value)
    assert '\n' not in message
    return message


def test_good_recipe_reads_with_lines():
    recipe = read_recipe('good.yaml', GOOD)
    assert recipe.trains
    assert recipe.where('diffusion', 'temperatures') == 'good.yaml:6'
    assert recipe.where('compositions', 'NaPO3', 'units') == 'good.yaml:3'


@pytest.mark.parametrize(('edit', 'line', 'expected'), [
    (('glasses:', 'glases:'), 5, "unknown key 'glases'"),
    (('[1500, 2000]', '[1500, -300]'), 6, 'temperatures are positive numbers in K, got -300'),
    (('[1500, 2000]', '[]'), 6, 'no temperatures given'),
    (('fractions: [0.5, 0.5]}', 'fractions: [0.5, 0.5], oxidation_states: {P: 3}}'), 3, 'net charge'),
    (('NaPO3: {', 'Na-PO3: {'), 3, "label 'Na-PO3' must be letters and digits"),
    (('engine: cp2k', 'engine: gaussian'), 4, "'gaussian' is not one of cp2k, qe, vasp"),
    (('protocol: fast}\nglasses', 'protocol: quick}\nglasses'), 4, "'quick' is not one of fast"),
])  # fmt: skip
def test_bad_recipe_names_the_line(edit, line, expected):
    message = recipe_error(GOOD.replace(*edit))
    assert message.startswith(f'bad.yaml:{line}: '), message
    assert expected in message, message


def test_unknown_key_in_a_stage_and_bad_potential():
    message = recipe_error(GOOD + 'elastic: {engine: ase, strain: 0.01}\n')
    assert message.startswith('bad.yaml:7: `elastic.strain`: unknown key') and 'overrides' in message
    message = recipe_error(GOOD + 'comparison: {teter: {classical: tetter}}\n')
    assert message.startswith('bad.yaml:7: `comparison.teter.classical`') and "'tetter' is not one of" in message
    message = recipe_error(GOOD + 'potential: {ace: missing.yaml}\n')
    assert 'no file' in message and 'missing.yaml' in message


def test_not_yaml_and_missing_file(tmp_path):
    assert recipe_error('study: [unclosed\n').startswith('bad.yaml:')
    with pytest.raises(RecipeError, match='no such recipe file'):
        read_recipe(tmp_path / 'absent.yaml')


@pytest.mark.parametrize('name', ['demo', 'nafepo4', 'nvp', 'napso'])
def test_shipped_recipes_read(name):
    recipe = read_recipe(WORKFLOWS / f'{name}.yaml')
    lines = (WORKFLOWS / f'{name}.yaml').read_text().splitlines()
    header = lines[:next(i for i, line in enumerate(lines) if not line.startswith('#'))]  # the leading comment block
    assert any('Cost' in line for line in header) and any('eproduc' in line for line in header)
    assert recipe.data['study'] == name

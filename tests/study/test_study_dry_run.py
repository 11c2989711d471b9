"""The dry run of the shipped recipes against this profile: every process builder of every stage is built (codes
resolved, protocols merged, potentials checked against the study's elements), and the profile errors (a missing
code, a potential without the study's elements) name the recipe line. Nothing is stored."""

from __future__ import annotations

import pathlib

import pytest

from aiida_glassml.common.recipe import RecipeError, read_recipe
from aiida_glassml.labeling.vasp import resolve_preset

WORKFLOWS = pathlib.Path(__file__).resolve().parents[2] / 'workflows'


@pytest.fixture
def study_codes(installed_code):
    codes = {
        'python': installed_code('python', 'core.shell', label='glassml-python'),
        'pacemaker': installed_code('pacemaker', 'glassml.pacemaker'),
        'lammps': installed_code('lmp', 'glassml.lammps_md', label='lammps'),
        'cp2k': installed_code('cp2k', 'cp2k'),
        'vasp': installed_code('mock-vasp', 'vasp.vasp'),
    }
    for name in ('pace_yaml2yace', 'pace_activeset', 'pace_select'):
        installed_code(name, 'core.shell')
    return codes


def _codes(study_codes, dft: str) -> dict:
    return {'dft': study_codes[dft], **{k: study_codes[k] for k in ('python', 'pacemaker', 'lammps')}}


@pytest.mark.parametrize(('name', 'dft', 'stages'), [
    ('demo', 'cp2k', {'initial_dataset', 'active_learning', 'glasses', 'analysis', 'elastic', 'diffusion'}),
    ('nafepo4', 'vasp', {'initial_dataset', 'active_learning', 'glasses', 'analysis', 'elastic', 'diffusion',
                         'benchmark'}),
    ('nvp', 'cp2k', {'glasses', 'analysis', 'hybrid'}),
    ('napso', 'cp2k', {'initial_dataset', 'active_learning', 'glasses', 'analysis', 'diffusion', 'benchmark'}),
])  # fmt: skip
def test_dry_run_builds_every_stage(name, dft, stages, study_codes, nafepo4_potcar_family, node_count):
    from aiida.engine.processes.builder import ProcessBuilder

    from aiida_glassml.workflows.study import plan_study

    recipe = read_recipe(WORKFLOWS / f'{name}.yaml')
    if dft == 'vasp':  # the test profile's dummy POTCARs stand in for the cluster's PBE.54
        recipe.data['labels']['potential_family'] = nafepo4_potcar_family
    before = node_count()
    builders = plan_study(recipe, _codes(study_codes, dft))
    assert set(builders) == stages
    glasses = builders['glasses']
    potentials = {'main', *(recipe.data.get('comparison') or {})}
    compositions = recipe.data['glasses'].get('compositions') or list(recipe.data['compositions'])
    assert set(glasses) == {f'{p}_{c}' for p in potentials for c in compositions}
    for stage, builder in builders.items():
        for item in (builder.values() if isinstance(builder, dict) else [builder]):
            assert isinstance(item, ProcessBuilder), stage
    if 'active_learning' in builders:
        assert builders['active_learning'].label.engine.value == recipe.data['labels']['engine']
    if name == 'nafepo4':
        settings = builders['initial_dataset'].label.settings.get_dict()
        vasp = resolve_preset(settings['vasp'])  # the study's settings: non-spin-polarised, PREC Normal
        assert settings['vasp']['preset'] == 'nafepo4' and vasp['ispin'] == 1 and vasp['prec'] == 'Normal'
        assert glasses['main_NaFePO4'].engine.value == 'lammps' and len(glasses['main_NaFePO4'].seeds) == 5
    if 'benchmark' in builders:  # the comparison's potentials (the main one is not fitted yet in a dry run)
        assert set(builders['benchmark'].potentials) == set(recipe.data['comparison'])
    if name == 'nvp':
        assert builders['hybrid'].mode.value == 'aimd'
        assert builders['hybrid'].settings.get_dict()['aimd']['temperature'] == 300.0
    assert node_count() == before


def test_missing_code_and_uncovered_potential_name_the_line(study_codes, node_count, tmp_path):
    from aiida_glassml.workflows.study import build_study

    text = (WORKFLOWS / 'demo.yaml').read_text()
    before = node_count()
    recipe_file = tmp_path / 'demo.yaml'
    recipe_file.write_text(text.replace('dft: cp2k@localhost', 'dft: cp2k@nowhere'))
    with pytest.raises(RecipeError) as info:
        build_study(str(recipe_file))
    line = next(i for i, l in enumerate(recipe_file.read_text().splitlines(), 1) if 'cp2k@nowhere' in l)
    assert str(info.value).startswith(f'{recipe_file}:{line}: `codes.dft`: code \'cp2k@nowhere\'')
    # Du's Buckingham set has no Fe: refused for a NaFePO4 study, naming the `potential` line
    nafepo4 = (WORKFLOWS / 'nvp.yaml').read_text().replace('units: [Na2O, V2O5, P2O5]', 'units: [Na2O, FeO, P2O5]')
    recipe_file.write_text(nafepo4)
    with pytest.raises(RecipeError) as info:
        build_study(str(recipe_file), codes=_codes(study_codes, 'cp2k'))
    line = next(i for i, l in enumerate(nafepo4.splitlines(), 1) if l.startswith('potential:'))
    assert str(info.value).startswith(f'{recipe_file}:{line}: `potential`: the potential') and "['Fe']" in str(info.value)
    assert node_count() == before


def test_study_reference_energies_refused_for_other_labels(study_codes, node_count, tmp_path):
    """The `nafepo4` fit protocol's reference energies are the study's VASP PBE+U atoms: the same recipe labelled with
    CP2K is refused in the dry run, naming the `active_learning` line, instead of at the loop's first fit."""
    import yaml

    from aiida_glassml.workflows.study import build_study

    data = yaml.safe_load((WORKFLOWS / 'nafepo4.yaml').read_text())
    data['labels'] = {'engine': 'cp2k', 'protocol': 'fast'}
    data.pop('codes')
    data['comparison'].pop('publishedACE')  # its yaml path is relative to workflows/
    text = yaml.safe_dump(data, sort_keys=False)
    recipe_file = tmp_path / 'nafepo4_cp2k.yaml'
    recipe_file.write_text(text)
    before = node_count()
    with pytest.raises(RecipeError) as info:
        build_study(str(recipe_file), codes=_codes(study_codes, 'cp2k'))
    line = next(i for i, l in enumerate(text.splitlines(), 1) if l.startswith('active_learning:'))
    assert str(info.value).startswith(f'{recipe_file}:{line}: `active_learning`: reference_energy is the NaFePO4 '
                                      "study's (VASP PBE+U")  # fmt: skip
    assert 'use protocol balanced' in str(info.value)
    assert node_count() == before

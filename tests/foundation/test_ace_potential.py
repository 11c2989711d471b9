"""AcePotentialData: the published NaFePO4 potential, hashing, calculators, LAMMPS lines and bad input."""

import io

import numpy as np
import pytest

from aiida_glassml.common.ace import AcePotentialError
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data import AcePotentialData


@pytest.fixture(scope='module')
def published(reference_potential_yaml, reference_potential_yace, aiida_profile):
    return AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)


def _asi_bytes(elements):
    buffer = io.BytesIO()
    np.savez(buffer, **{e: np.eye(2) for e in elements})
    return buffer.getvalue()


def test_published_potential_attributes(published):
    assert published.elements == ['Fe', 'Na', 'O', 'P']
    assert published.cutoff == pytest.approx(6.5)
    functions = published.base.attributes.get('functions_per_element')
    assert set(functions) == {'Fe', 'Na', 'O', 'P'} and all(240 <= n <= 260 for n in functions.values())
    assert published.reference_energy['Na'] == pytest.approx(-0.0749040330661)
    assert published.base.attributes.get('embedding')['npot'] == 'FinnisSinclairShiftedScaled'
    assert len(published.base.attributes.get('sha256_yaml')) == 64
    assert not published.has_active_set


def test_get_or_create_stores_once(published, reference_potential_yaml, reference_potential_yace):
    again = AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)
    assert again.pk == published.pk


def test_yace_is_made_when_missing(reference_potential_yaml, reference_potential_yace):
    node = AcePotentialData(yaml=reference_potential_yaml)
    content = node.base.repository.get_object_content('potential.yace', mode='rb')
    assert content.startswith(b'elements: [Fe, Na, O, P]')


def test_published_potential_gives_energies_and_forces(published, reference_test_set_path):
    frames = FrameSet.read_pacemaker_pickle(reference_test_set_path).select([0, 100, 200])
    calc = published.get_calculator()
    predicted, reference = [], []
    for atoms, dft in zip(frames.to_atoms(), frames.to_atoms()):
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        assert np.isfinite(energy)
        predicted.append(atoms.get_forces().ravel())
        reference.append(dft.calc.results['forces'].ravel())
    predicted, reference = np.concatenate(predicted), np.concatenate(reference)
    # A real potential on its own held-out data: forces correlate strongly with DFT.
    assert np.corrcoef(predicted, reference)[0, 1] > 0.9
    assert np.mean(np.abs(predicted - reference)) < 1.0


def test_lammps_pair_lines(published):
    assert published.lammps_pair_lines(['Na', 'Fe', 'P', 'O']) == [
        'pair_style pace', 'pair_coeff * * potential.yace Na Fe P O'
    ]
    with pytest.raises(AcePotentialError, match='needs an active set'):
        published.lammps_pair_lines(extrapolation=True)
    with pytest.raises(AcePotentialError, match=r"no parameters for \['V'\]"):
        published.lammps_pair_lines(['Na', 'V'])


def test_active_set_is_stored_and_gives_extrapolation_lines(reference_potential_yaml, reference_potential_yace):
    node = AcePotentialData(yaml=reference_potential_yaml, yace=reference_potential_yace,
                            asi=_asi_bytes(['Fe', 'Na', 'O', 'P']))  # fmt: skip
    assert node.has_active_set
    assert node.lammps_pair_lines(extrapolation=True) == [
        'pair_style pace/extrapolation', 'pair_coeff * * potential.yaml potential.asi Fe Na O P'
    ]


@pytest.mark.parametrize(
    'kwargs, message',
    [
        ({'yaml': b'cutoff: 6.5\nfit: {}\n'}, 'not a pacemaker B-basis potential'),
        ({'yaml': b'species: [\n  - : :'}, 'not valid YAML'),
        ({'asi': 'wrong-elements'}, "the .asi active set is for elements ['Fe', 'Na', 'O']"),
        ({'asi': b'not an npz'}, 'not a pacemaker active set'),
        ({'yace': b'elements: [Fe, Na]\nE0: [0, 0]\n'}, "the .yace is for elements ['Fe', 'Na']"),
        ({'yace': b'deltaSplineBins: 0.001\n'}, 'the .yace file has no `elements:` line'),
    ],
)
def test_bad_potential_files_are_rejected(kwargs, message, reference_potential_yaml, reference_potential_yace,
                                          node_count, aiida_profile):  # fmt: skip
    if kwargs.get('asi') == 'wrong-elements':
        kwargs = {'asi': _asi_bytes(['Fe', 'Na', 'O'])}
    kwargs.setdefault('yaml', reference_potential_yaml)
    kwargs.setdefault('yace', reference_potential_yace)
    before = node_count()
    with pytest.raises(AcePotentialError) as excinfo:
        AcePotentialData(**kwargs).store()
    assert message in str(excinfo.value)
    assert node_count() == before


def test_yace_must_be_the_yaml_potential(reference_potential_yaml, reference_potential_yace, node_count,
                                         aiida_profile):  # fmt: skip
    """Not only the elements: a .yaml whose coefficients (or cutoff) were changed no longer matches the old .yace,
    and the node would give LAMMPS (the .yace) and pyace (the .yaml) different potentials."""
    text = reference_potential_yaml.read_bytes()
    changed = text.replace(b'c: [-0.18110238670502016', b'c: [-0.19110238670502016', 1)
    assert changed != text
    before = node_count()
    with pytest.raises(AcePotentialError, match=r'functions\[Fe\]\[\d+\]\.ctildes\[\d+\] is .* in the \.yace but'):
        AcePotentialData(yaml=changed, yace=reference_potential_yace).store()
    assert node_count() == before
    # the file pacemaker wrote (another build's rounding in the last digits) is the same potential
    assert AcePotentialData(yaml=reference_potential_yaml, yace=reference_potential_yace).cutoff == 6.5


def test_coverage_check(published):
    published.check_covers(['Na', 'O'])
    with pytest.raises(AcePotentialError, match=r"also contains \['S'\]"):
        published.check_covers(['Na', 'S', 'O'])

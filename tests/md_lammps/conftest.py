"""Fixtures for running ACE in LAMMPS: frames of the published test set and the published potential with an active
set. The ML-PACE LAMMPS itself (``lammps_pace_executable``, ``lammps_pace_code``) comes from tests/conftest.py."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest


@pytest.fixture(scope='session')
def test_frames(reference_test_set_path):
    """The published DFT test set (pandas DataFrame with ``ase_atoms``)."""
    import pandas as pd

    return pd.read_pickle(reference_test_set_path, compression='gzip')


@pytest.fixture(scope='session')
def nafepo4_frame(test_frames):
    """A 110-atom Na10Fe30P10O60 frame of the test set (2.0 g/cm³): every element of the potential."""
    atoms = test_frames['ase_atoms'].iloc[2].copy()
    assert atoms.get_chemical_formula() == 'Fe30Na10O60P10'
    return atoms


@pytest.fixture(scope='session')
def active_set_files(tmp_path_factory, reference_potential_yaml, reference_potential_yace, test_frames):
    """The published potential with an active set built by `pace_activeset` from 60 frames of the test set."""
    executable = shutil.which('pace_activeset')
    if executable is None:
        pytest.skip('`pace_activeset` (python-ace) is not installed')
    folder = tmp_path_factory.mktemp('active_set')
    test_frames.sample(60, random_state=0).to_pickle(folder / 'frames.pckl.gzip', compression='gzip')
    shutil.copy(reference_potential_yaml, folder / 'output_potential.yaml')
    subprocess.run([executable, '-V', '-d', 'frames.pckl.gzip', 'output_potential.yaml'], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip
    return {'yaml': folder / 'output_potential.yaml', 'yace': reference_potential_yace,
            'asi': folder / 'output_potential.asi'}  # fmt: skip


@pytest.fixture
def ace_potential(aiida_profile, reference_potential_yaml, reference_potential_yace):
    """The published potential without an active set (``pair_style pace`` with the .yace)."""
    from aiida_glassml.data.ace_potential import AcePotentialData

    return AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)


@pytest.fixture
def ace_potential_with_active_set(aiida_profile, active_set_files):
    """The published potential with its active set (``pair_style pace/extrapolation`` with .yaml + .asi)."""
    from aiida_glassml.data.ace_potential import AcePotentialData

    return AcePotentialData.get_or_create(active_set_files['yaml'], yace=active_set_files['yace'],
                                          asi=active_set_files['asi'])  # fmt: skip

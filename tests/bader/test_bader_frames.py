"""Bader charges in the frame arrays: optional, so sets without them keep their files and hashes; kept through the
node, extxyz, selection and concatenation."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_glassml.common.frames import SCHEMA, FrameSet

from .conftest import napo3_atoms


def _frames(with_charges: bool):
    frames = []
    for seed in (1, 2):
        atoms = napo3_atoms()
        atoms.rattle(0.05, seed=seed)
        atoms.calc = SinglePointCalculator(atoms, energy=-100.0 - seed, forces=np.full((20, 3), 0.1 * seed))
        if with_charges:
            atoms.arrays['bader_charges'] = np.linspace(-1.5, 0.9, 20) + seed
        frames.append(atoms)
    return frames


def test_sets_without_charges_hash_as_before():
    frameset = FrameSet.from_atoms(_frames(False))
    digest = hashlib.sha256(SCHEMA.encode())  # the hash over the eleven arrays every set has
    for key in FrameSet.ARRAY_KEYS:
        array = np.ascontiguousarray(getattr(frameset, key))
        digest.update(key.encode())
        digest.update(array.dtype.str.encode())
        digest.update(array.tobytes())
    assert frameset.arrays_sha256() == digest.hexdigest()
    assert not frameset.has_bader.any() and np.isnan(frameset.bader_charges).all()
    with np.load(io.BytesIO(frameset.to_npz_bytes())) as data:
        assert 'bader_charges' not in data.files
    assert FrameSet.from_atoms(_frames(True)).arrays_sha256() != frameset.arrays_sha256()


def test_charges_survive_the_node_extxyz_select_and_concatenate(aiida_profile, tmp_path):
    from aiida_glassml.data.training_set import TrainingSetData

    frameset = FrameSet.from_atoms(_frames(True))
    node = TrainingSetData(frameset).store()
    assert node.base.attributes.get('has_bader_charges')
    stored = node.get_frameset()
    np.testing.assert_array_equal(stored.bader_charges, frameset.bader_charges)
    assert stored.has_bader.tolist() == [True, True]
    node.export(tmp_path / 'frames.extxyz')
    again = FrameSet.read_extxyz(tmp_path / 'frames.extxyz')
    np.testing.assert_array_equal(again.bader_charges, frameset.bader_charges)
    second = frameset.select([1])
    np.testing.assert_array_equal(second.bader_charges, frameset.bader_charges[20:])
    mixed = FrameSet.concatenate([second, FrameSet.from_atoms(_frames(False))])
    assert mixed.has_bader.tolist() == [True, False, False]
    assert np.isnan(mixed.bader_charges[20:]).all()

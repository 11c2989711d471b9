"""Calcfunctions that combine training sets. They always create new nodes; stored nodes never change."""

from __future__ import annotations

from aiida.engine import calcfunction
from aiida.orm import Dict

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data.training_set import TrainingSetData


def _combine(framesets: list[FrameSet]) -> dict:
    combined = FrameSet.concatenate(framesets)
    unique, n_dropped = combined.deduplicate()
    report = Dict({
        'n_frames_in': combined.n_frames,
        'n_frames_out': unique.n_frames,
        'n_duplicates_dropped': n_dropped,
    })  # fmt: skip
    return {'training_set': TrainingSetData(unique), 'report': report}


@calcfunction
def merge_training_sets(**training_sets: TrainingSetData) -> dict:
    """Merge any number of training sets (in keyword order), dropping exact-duplicate structures.

    Outputs ``training_set`` and ``report`` (``n_duplicates_dropped`` and counts)."""
    return _combine([training_sets[key].get_frameset() for key in sorted(training_sets)])


@calcfunction
def append_training_set(training_set: TrainingSetData, new_frames: TrainingSetData) -> dict:
    """Append ``new_frames`` to ``training_set`` as a new node, dropping exact-duplicate structures."""
    return _combine([training_set.get_frameset(), new_frames.get_frameset()])


def run_merge_training_sets(*training_sets: TrainingSetData) -> dict:
    """Check the inputs, then run :func:`merge_training_sets` (in the given order); nothing is stored on bad input."""
    from aiida_glassml.common.frames import FrameValidationError

    if not training_sets:
        raise FrameValidationError('nothing to merge: give at least one TrainingSetData.')
    wrong = [type(s).__name__ for s in training_sets if not isinstance(s, TrainingSetData)]
    if wrong:
        raise FrameValidationError(f'only TrainingSetData can be merged, got {wrong}; import files first with '
                                   '`TrainingSetData.from_file` or `aiida-glassml data import training-set`.')  # fmt: skip
    return merge_training_sets(**{f'set_{index:04d}': s for index, s in enumerate(training_sets)})

"""Calcfunctions that combine training sets. They always create new nodes; stored nodes never change.

Sets labelled at different levels of theory are refused (:mod:`aiida_glassml.labeling.level_of_theory`) unless
``allow_mixed_levels`` is true; the check runs as the calcfunctions' input validator, so a refusal stores nothing."""

from __future__ import annotations

from aiida.engine import calcfunction
from aiida.orm import Bool, Dict

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.labeling import level_of_theory as lot


def merged_level_of_theory(training_sets: dict, allow_mixed_levels=False) -> dict | None:
    """The level of the merge of ``training_sets`` (name -> TrainingSetData, in merge order); raises
    ``LevelOfTheoryError`` naming the differences unless ``allow_mixed_levels`` (bool or Bool)."""
    allow = bool(getattr(allow_mixed_levels, 'value', allow_mixed_levels))
    return lot.combine_levels({name: s.level_of_theory for name, s in training_sets.items()}, allow_mixed=allow)


def validate_merge_inputs(inputs, _ctx=None) -> str | None:
    """Input validator: the sets' levels of theory can be combined (or mixing is allowed)."""
    sets = {key: value for key, value in inputs.items() if isinstance(value, TrainingSetData)}
    if not sets:
        return None
    try:
        merged_level_of_theory(_ordered(sets), inputs.get('allow_mixed_levels', False))
    except lot.LevelOfTheoryError as exc:
        return str(exc)
    return None


def _ordered(sets: dict) -> dict:
    """Merge order: keyword order for ``merge_training_sets``, the set then the new frames for the append."""
    keys = ['training_set', 'new_frames'] if set(sets) == {'training_set', 'new_frames'} else sorted(sets)
    return {key: sets[key] for key in keys}


def _combine(named_sets: dict, allow_mixed_levels) -> dict:
    level = merged_level_of_theory(named_sets, allow_mixed_levels)
    combined = FrameSet.concatenate([s.get_frameset() for s in named_sets.values()])
    unique, n_dropped = combined.deduplicate()
    report = Dict({
        'n_frames_in': combined.n_frames,
        'n_frames_out': unique.n_frames,
        'n_duplicates_dropped': n_dropped,
    })  # fmt: skip
    return {'training_set': TrainingSetData(unique, level_of_theory=level), 'report': report}


@calcfunction
def merge_training_sets(allow_mixed_levels: Bool | None = None, **training_sets: TrainingSetData) -> dict:
    """Merge any number of training sets (in keyword order), dropping exact-duplicate structures. Sets at different
    levels of theory are refused unless ``allow_mixed_levels`` is ``Bool(True)``.

    Outputs ``training_set`` (with the common level of theory, or a record of every level) and ``report``."""
    return _combine(_ordered(training_sets), allow_mixed_levels)


@calcfunction
def append_training_set(training_set: TrainingSetData, new_frames: TrainingSetData,
                        allow_mixed_levels: Bool | None = None) -> dict:  # fmt: skip
    """Append ``new_frames`` to ``training_set`` as a new node, dropping exact-duplicate structures; levels of
    theory as :func:`merge_training_sets`."""
    return _combine({'training_set': training_set, 'new_frames': new_frames}, allow_mixed_levels)


# The level check runs before the calcfunction node is stored.
for _function in (merge_training_sets, append_training_set):
    _function.process_class.spec().inputs.validator = validate_merge_inputs


def run_merge_training_sets(*training_sets: TrainingSetData, allow_mixed_levels: bool = False) -> dict:
    """Check the inputs, then run :func:`merge_training_sets` (in the given order); nothing is stored on bad input
    (``FrameValidationError``, or ``LevelOfTheoryError`` for sets at different levels of theory)."""
    from aiida_glassml.common.frames import FrameValidationError

    if not training_sets:
        raise FrameValidationError('nothing to merge: give at least one TrainingSetData.')
    wrong = [type(s).__name__ for s in training_sets if not isinstance(s, TrainingSetData)]
    if wrong:
        raise FrameValidationError(f'only TrainingSetData can be merged, got {wrong}; import files first with '
                                   '`TrainingSetData.from_file` or `aiida-glassml data import training-set`.')  # fmt: skip
    named = {f'set_{index:04d}': s for index, s in enumerate(training_sets)}
    merged_level_of_theory(named, allow_mixed_levels)
    extra = {'allow_mixed_levels': Bool(True)} if allow_mixed_levels else {}
    return merge_training_sets(**named, **extra)

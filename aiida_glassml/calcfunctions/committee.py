"""The committee selector of the active-learning loop as a calcfunction: its inputs are the candidate trajectories of
the exploration runs, its outputs the selected frames, so every frame keeps the link to the run that produced it (as
``PaceSelectCalculation``'s do). The choice itself is :func:`aiida_glassml.fitting.active_learning.select_by_force_deviation`."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_glassml.fitting import active_learning as al
from aiida_glassml.fitting.selection import selection_key


def check_candidates(candidates) -> str | None:
    """None, or one line naming candidates that cannot be selected by force deviation."""
    if not candidates:
        return 'no candidates: give the `extrapolative_trajectory` outputs of the committee MD runs, keyed by run label.'
    lacking = sorted(label for label, trajectory in candidates.items()
                     if 'max_force_deviation' not in trajectory.get_arraynames())  # fmt: skip
    if lacking:
        return (f'candidates {lacking} have no `max_force_deviation` array: they come from runs without a committee; '
                'explore with a committee and the protocol `force_deviation`.')  # fmt: skip
    return None


@calcfunction
def select_committee_frames(window: orm.Dict, **candidates: orm.TrajectoryData) -> dict:
    """Frames with sigma_lo < σ_F,max < sigma_hi, most uncertain first, at most ``max_select`` (``window``: sigma_lo,
    sigma_hi, max_select). Outputs ``selection`` (the record, as pace_select's) and ``selected_NNNN`` structures."""
    settings = window.get_dict()
    rows = []
    for label in sorted(candidates):
        trajectory = candidates[label]
        sigma, steps = trajectory.get_array('max_force_deviation'), trajectory.get_stepids()
        rows += [(label, trajectory, frame, int(steps[frame]), float(sigma[frame])) for frame in range(len(sigma))]
    order = al.select_by_force_deviation([row[4] for row in rows], settings['sigma_lo'], settings['sigma_hi'],
                                         settings['max_select'])  # fmt: skip
    inside = int(sum(1 for row in rows if settings['sigma_lo'] < row[4] < settings['sigma_hi']))
    outputs, frames = {}, []
    for position, index in enumerate(order):
        label, trajectory, frame, step, sigma = rows[index]
        key = selection_key(position)
        outputs[key] = trajectory.get_step_structure(frame)
        frames.append({'key': key, 'source': label, 'source_uuid': trajectory.uuid, 'step': step, 'frame': frame,
                       'max_force_deviation': sigma, 'candidate_index': int(index)})  # fmt: skip
    per_source = {label: int(candidates[label].numsteps) for label in sorted(candidates)}
    values = np.array([row[4] for row in rows], dtype=float)
    outputs['selection'] = orm.Dict({
        'selector': 'force_deviation', 'sigma_lo': settings['sigma_lo'], 'sigma_hi': settings['sigma_hi'],
        'n_candidates': len(rows), 'n_candidates_per_source': per_source, 'n_selected': len(frames),
        'n_selectable': inside, 'n_above_sigma_hi': int((values >= settings['sigma_hi']).sum()),
        'max_select': int(settings['max_select']), 'frames': frames,
    })  # fmt: skip
    return outputs

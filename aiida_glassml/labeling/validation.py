"""Checks of labelling settings, run before anything is stored or submitted."""

from __future__ import annotations

import typing as t

from .errors import LabelingInputError

ENGINES = ('cp2k', 'qe', 'vasp', 'potential')
MODES = ('aimd', 'single_point')


def validate_engine_and_mode(engine: str, mode: str) -> None:
    if engine not in ENGINES:
        raise LabelingInputError(f'unknown engine `{engine}`; choose one of {", ".join(ENGINES)}.')
    if mode not in MODES:
        raise LabelingInputError(f'unknown mode `{mode}`; choose `aimd` (NVT MD) or `single_point`.')
    if engine == 'potential' and mode != 'single_point':
        raise LabelingInputError(
            'engine `potential` (a teacher potential) labels single points only, not `aimd`; run MD with the potential '
            'in the MD layer (AseMDCalculation, MeltQuenchWorkChain) and label its frames with mode `single_point`.'
        )


def validate_aimd(aimd: dict) -> None:
    """Temperature > 0, timestep > 0, steps ≥ 1 and a sampling interval no longer than the run."""
    temperature = aimd.get('temperature')
    if temperature is None or float(temperature) <= 0:
        raise LabelingInputError(
            f'AIMD temperature must be above 0 K, got {temperature}; set `aimd.temperature` (the paper uses 5000 K).'
        )
    if float(aimd.get('timestep') or 0) <= 0:
        raise LabelingInputError(f'AIMD timestep must be above 0 fs, got {aimd.get("timestep")}; set `aimd.timestep`.')
    steps, every = int(aimd.get('steps') or 0), int(aimd.get('sample_every') or 0)
    if steps < 1:
        raise LabelingInputError(f'AIMD needs at least one step, got steps={steps}; set `aimd.steps`.')
    if every < 1:
        raise LabelingInputError(f'`aimd.sample_every` must be at least 1 step, got {every}.')
    if every > steps:
        raise LabelingInputError(
            f'the sampling interval ({every} steps = {every * float(aimd["timestep"]):g} fs) is longer than the run '
            f'({steps} steps = {steps * float(aimd["timestep"]):g} fs), so only the start structure would be sampled; '
            'lower `aimd.sample_every` or raise `aimd.steps`.'
        )


def validate_structures(structures: t.Mapping[str, t.Any]) -> None:
    if not structures:
        raise LabelingInputError('no structures to label: pass at least one StructureData in `structures`.')

"""Engine-agnostic helpers for labelled frames: composition formula, MD sampling, merging frames of restarted runs."""

from __future__ import annotations

import math
import typing as t

import numpy as np

# Pauling electronegativities: the formula lists elements from the most electropositive on.
ELECTRONEGATIVITY = {
    'Li': 0.98, 'Na': 0.93, 'K': 0.82, 'Mg': 1.31, 'Ca': 1.0, 'Al': 1.61, 'Ti': 1.54, 'V': 1.63, 'Cr': 1.66,
    'Mn': 1.55, 'Fe': 1.83, 'Co': 1.88, 'Ni': 1.91, 'Cu': 1.9, 'Zn': 1.65, 'B': 2.04, 'Si': 1.9, 'Ge': 2.01,
    'P': 2.19, 'S': 2.58, 'Se': 2.55, 'C': 2.55, 'N': 3.04, 'O': 3.44, 'F': 3.98, 'Cl': 3.16, 'H': 2.2,
}  # fmt: skip


def composition_formula(symbols: t.Sequence[str]) -> str:
    """Empirical formula, cations first: ``NaPO3``, ``NaFePO4``, ``SiO2``."""
    counts: dict[str, int] = {}
    for symbol in symbols:
        counts[symbol] = counts.get(symbol, 0) + 1
    divisor = 0
    for count in counts.values():
        divisor = math.gcd(divisor, count)
    order = sorted(counts, key=lambda s: (ELECTRONEGATIVITY.get(s, 2.5), s))
    return ''.join(f'{s}{counts[s] // divisor if counts[s] // divisor > 1 else ""}' for s in order)


def unique_steps(frames_per_run: t.Sequence[t.Sequence[dict]]) -> list[dict]:
    """Frames of consecutive runs of one MD (a run and its restarts), each MD step once: a restart writes its first
    step again, and the earlier run's copy is kept, unless only the restart's copy has a converged SCF."""
    position, result = {}, []
    for frames in frames_per_run:
        for frame in frames:
            step = frame.get('metadata', {}).get('step')
            if step is not None and step in position:
                if not scf_converged(result[position[step]]) and scf_converged(frame):
                    result[position[step]] = frame
                continue
            if step is not None:
                position[step] = len(result)
            result.append(frame)
    return result


def scf_converged(frame: dict) -> bool:
    """False only for a frame whose engine reported that its SCF stopped at the iteration limit (``scf_converged``
    False); frames that do not say are taken as converged."""
    return frame.get('scf_converged', True) is not False


def split_unconverged(frames: t.Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """(converged, unconverged) frames. Energies and forces of an SCF stopped at its iteration limit are not labels,
    so the unconverged ones must not enter a training set; the flag is removed from both."""
    kept, dropped = [], []
    for frame in frames:
        (kept if scf_converged(frame) else dropped).append(frame)
        frame.pop('scf_converged', None)
    return kept, dropped


def continue_restarted_steps(
    frames_per_run: t.Sequence[t.Sequence[dict]], sample_every: int = 1, atol: float = 1e-4
) -> list[dict]:
    """Frames of one MD run and its restarts (in order), numbered by MD step over the whole chain, sampled every
    ``sample_every`` steps of that numbering, each step once.

    For engines that number frames inside each CalcJob (pw.x, VASP): every frame of every run, ``metadata['step']``
    being its index in its run (0 = the run's first force evaluation). A run continues where the previous one stopped:
    its step 0 is the previous run's last step when it starts from that step's positions (the step is evaluated again;
    the earlier copy is kept), otherwise the step after it. Runs without frames advance nothing. Frames are modified
    in place (``metadata['step']`` becomes the step over the chain).
    """
    next_step, last, sampled = 0, None, []
    for frames in frames_per_run:
        if not frames:
            continue
        start = next_step
        first = frames[0]
        if last is not None and np.shape(first['positions']) == np.shape(last['positions']) and np.allclose(
            first['positions'], last['positions'], rtol=0, atol=atol
        ):
            start = next_step - 1
        for frame in frames:
            frame['metadata']['step'] = start + int(frame['metadata']['step'])
        next_step, last = frames[-1]['metadata']['step'] + 1, frames[-1]
        sampled.append([f for f in frames if f['metadata']['step'] % int(sample_every) == 0])
    return unique_steps(sampled)


def sample_steps(steps: int, sample_every: int) -> list[int]:
    """MD steps written as frames: 0, N, 2N, ... up to ``steps``."""
    return list(range(0, int(steps) + 1, int(sample_every)))

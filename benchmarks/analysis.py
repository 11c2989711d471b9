"""Benchmark of the glass analysis library against vitrum (the study author's tool) on the same 3003-atom glass,
in one run. Prints one table: time per call of each tool, the speed-up, and the agreement where the definitions
coincide. Run: ``.venv/bin/python benchmarks/analysis.py [GLASS.dat]``.

Each ``bench_*`` function returns rows ``(task, vitrum_s, ours_s, agreement)``; the dynamics half appends its own
``bench_*`` functions to ``BENCHMARKS``.
"""

from __future__ import annotations

import pathlib
import sys
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_GLASS = ROOT / 'tests' / 'data' / 'glasses' / 'ACE_300K_1.dat'


def timed(function, repeat: int = 1):
    """(best wall time in s, result of the last call)."""
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_scattering(atoms) -> list[tuple]:
    import vitrum

    from aiida_glassml.analysis import compute_rdf, neutron_structure_factor, xray_structure_factor

    def theirs():
        scattering = vitrum.Scattering(atoms, disable_progress=True)
        return scattering, scattering.get_structure_factor('neutron')

    t_vitrum, (scattering, s_vitrum) = timed(theirs)
    half = float(scattering.rrange)
    nbin = scattering.nbin
    q = scattering.qval

    def ours():
        rdf = compute_rdf(atoms, r_max=half, dr=half / nbin)
        return rdf, neutron_structure_factor(rdf, q)[1]

    t_ours, (rdf, s_ours) = timed(ours, repeat=3)
    g_diff = max(np.abs(rdf.g(a, b) - scattering.get_partial_pdf((a, b))).max() for a, b in rdf.pairs)
    rows = [
        ('neutron S(Q), 1 frame', t_vitrum, t_ours, f'max|ΔS|={np.abs(s_ours - s_vitrum).max():.2e}; max|Δg_ab|={g_diff:.2e}'),
    ]
    t_x_ours, sx = timed(lambda: xray_structure_factor(rdf, q)[1], repeat=3)
    rows.append(('X-ray S(Q) from g(r) (ours only)', float('nan'), t_x_ours, f'S(Q>15)={sx[q > 15].mean():.3f}'))
    return rows


def bench_rings(atoms) -> list[tuple]:
    import vitrum

    from aiida_glassml.analysis import guttman_rings

    ours_time, result = timed(lambda: guttman_rings(atoms, max_size=24), repeat=2)
    cutoffs = {tuple(key.split('-')): value for key, value in result.cutoffs.items()}

    def theirs():
        analysis = vitrum.RingAnalysis(atoms, ['P', 'Fe', 'O'], [('P', 'O'), ('Fe', 'O')])
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            analysis.calculate(cutoff=cutoffs, max_size=24)
        return analysis.get_ring_size_distribution()

    t_vitrum, distribution = timed(theirs)
    ours = result.size_distribution()
    same = ours == {int(k): int(v) for k, v in distribution.items()}
    return [('Guttman rings (P,Fe–O, ≤24 atoms)', t_vitrum, ours_time,
             f'size distributions {"identical" if same else "differ"} ({sum(ours.values())} rings)')]  # fmt: skip


BENCHMARKS = [bench_scattering, bench_rings]


def main(path: pathlib.Path = DEFAULT_GLASS) -> None:
    from aiida_glassml.analysis import read_structure

    atoms = read_structure(path)
    rows = []
    for bench in BENCHMARKS:
        rows.extend(bench(atoms))
    print(f'glass: {path.name} ({len(atoms)} atoms)')
    header = f'{"task":<36} {"vitrum (s)":>11} {"ours (s)":>9} {"speed-up":>9}  agreement'
    print(header)
    print('-' * len(header))
    for task, t_vitrum, t_ours, agreement in rows:
        ratio = t_vitrum / t_ours if np.isfinite(t_vitrum) else float('nan')
        print(f'{task:<36} {t_vitrum:>11.3f} {t_ours:>9.3f} {ratio:>8.1f}x  {agreement}')


if __name__ == '__main__':
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_GLASS)

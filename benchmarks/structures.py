"""Benchmark: random packing of a 3003-atom NaFePO4 glass at 3.38 g/cm3 with a 1.7 Å minimum distance.

Ours (``aiida_glassml.structures``: integer formula + random sequential addition on a cell list) against
``vitrum.packing.get_random_packed`` on the same task, in the same run. vitrum is given ``radii_scaling=0`` so its
per-atom radii all become ``min_distance / 2``: the same 1.7 Å rule for every pair (its default ionic radii would
enforce larger distances). Both results are checked with the same ASE neighbour list.

Run: ``.venv/bin/python benchmarks/structures.py [--repeats 3]``. Target: ours < 2 s on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

N_ATOMS = 3003
DENSITY = 3.38
MIN_DISTANCE = 1.7
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def ours(seed: int):
    from aiida_glassml.structures import generate_random_structure

    composition = {'units': ['Na2O', 'FeO', 'P2O5'], 'fractions': [0.25, 0.5, 0.25]}
    settings = {'n_atoms': N_ATOMS, 'density': DENSITY, 'min_distance': MIN_DISTANCE}
    return generate_random_structure(composition, seed, settings).atoms


def vitrum(seed: int):
    from vitrum.packing import get_random_packed

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # Sobol balance warning for non-power-of-two counts
        return get_random_packed('NaFePO4', target_atoms=N_ATOMS, min_distance=MIN_DISTANCE, density=DENSITY,
                                 vol_per_atom_source='density', radii_scaling=0.0, seed=seed)  # fmt: skip


def measure(function, repeats: int):
    from aiida_glassml.structures import min_distance_violations

    times, atoms = [], None
    for seed in range(1, repeats + 1):
        start = time.perf_counter()
        atoms = function(seed)
        times.append(time.perf_counter() - start)
    density = atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3
    return statistics.median(times), len(atoms), density, len(min_distance_violations(atoms, MIN_DISTANCE))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3, help='runs per tool (seeds 1..N); the median is reported')
    args = parser.parse_args()
    rows = [('aiida-glassml', *measure(ours, args.repeats)), ('vitrum', *measure(vitrum, args.repeats))]
    print(f'NaFePO4, {N_ATOMS} atoms, {DENSITY} g/cm3, min distance {MIN_DISTANCE} Å, median of {args.repeats} seeds')
    print(f'{"tool":<14} {"time / s":>9} {"atoms":>6} {"g/cm3":>7} {"pairs < 1.7 Å":>14}')
    for name, seconds, n_atoms, density, violations in rows:
        print(f'{name:<14} {seconds:>9.3f} {n_atoms:>6d} {density:>7.4f} {violations:>14d}')
    print(f'speed-up (vitrum / aiida-glassml): {rows[1][1] / rows[0][1]:.1f}x')


if __name__ == '__main__':
    main()

"""The one place for MD unit conversion.

Conventions of the MD layer (``aiida_glassml.md``): time in ps, temperature in K, pressure in bar, heating/cooling
rate in K/ps, energy in eV, length in Å, density in g/cm³. LAMMPS ``units metal`` uses exactly these (timestep in
ps, pressure in bar), so a timestep written as ``1`` instead of ``0.001`` is a 1000× error: every conversion between
times and step counts goes through :func:`steps_from_time` and :func:`ramp_steps`.

Pure Python; no AiiDA imports.
"""

from __future__ import annotations

import math
from fractions import Fraction

#: femtoseconds per picosecond
FS_PER_PS = 1000.0
#: bar per GPa
BAR_PER_GPA = 1.0e4
#: GPa per eV/Å³ (1 eV/Å³ = 1.602176634e-19 J / 1e-30 m³ = 160.2176634 GPa)
GPA_PER_EV_PER_A3 = 160.2176634
#: bar per eV/Å³
BAR_PER_EV_PER_A3 = GPA_PER_EV_PER_A3 * BAR_PER_GPA
#: grams per atomic mass unit (CODATA 2018)
G_PER_AMU = 1.66053906660e-24
#: cm³ per Å³
CM3_PER_A3 = 1.0e-24
#: g/cm³ per amu/Å³
G_CM3_PER_AMU_A3 = G_PER_AMU / CM3_PER_A3
#: a timestep above this (in ps) is almost certainly a timestep given in fs
MAX_SANE_TIMESTEP_PS = 0.01


class UnitsError(ValueError):
    """A quantity that cannot be converted as asked (for example a time that is not a whole number of steps)."""


def ps_to_fs(time_ps: float) -> float:
    return float(time_ps) * FS_PER_PS


def fs_to_ps(time_fs: float) -> float:
    return float(time_fs) / FS_PER_PS


def timestep_ps(timestep_fs: float) -> float:
    """The ``units metal`` timestep (ps) for a timestep given in fs."""
    return fs_to_ps(timestep_fs)


def _exact(value: float) -> Fraction:
    # Decimal-string round trip: 0.001 is 1/1000 here, not the nearest binary float.
    return Fraction(repr(float(value)))


def steps_from_time(time_ps: float, timestep_ps: float) -> int:
    """Number of MD steps covering ``time_ps`` at ``timestep_ps`` (both ps).

    Computed in exact decimal arithmetic, so 2700 ps at 0.001 ps is exactly 2,700,000 steps. A time that is not a
    whole number of steps is rounded up (the stage never runs shorter than asked). A positive time always gives at
    least one step.
    """
    if timestep_ps <= 0:
        raise UnitsError(f'timestep must be positive (ps), got {timestep_ps}.')
    if time_ps < 0:
        raise UnitsError(f'time must not be negative (ps), got {time_ps}.')
    ratio = _exact(time_ps) / _exact(timestep_ps)
    return int(math.ceil(ratio))


def time_from_steps(steps: int, timestep_ps: float) -> float:
    """Simulated time (ps) of ``steps`` MD steps."""
    return float(Fraction(int(steps)) * _exact(timestep_ps))


def ramp_time(t_start: float, t_end: float, rate: float) -> float:
    """Duration (ps) of a linear temperature ramp from ``t_start`` to ``t_end`` (K) at ``rate`` (K/ps, magnitude)."""
    if rate <= 0:
        raise UnitsError(f'ramp rate must be positive (K/ps), got {rate}.')
    return float(abs(_exact(t_end) - _exact(t_start)) / _exact(rate))


def ramp_steps(t_start: float, t_end: float, rate: float, timestep_ps: float) -> int:
    """Number of MD steps of a linear ramp; 3000 K → 300 K at 1 K/ps and 0.001 ps is exactly 2,700,000."""
    if rate <= 0:
        raise UnitsError(f'ramp rate must be positive (K/ps), got {rate}.')
    if timestep_ps <= 0:
        raise UnitsError(f'timestep must be positive (ps), got {timestep_ps}.')
    ratio = abs(_exact(t_end) - _exact(t_start)) / _exact(rate) / _exact(timestep_ps)
    return int(math.ceil(ratio))


def bar_to_gpa(pressure_bar: float) -> float:
    return float(pressure_bar) / BAR_PER_GPA


def gpa_to_bar(pressure_gpa: float) -> float:
    return float(pressure_gpa) * BAR_PER_GPA


def ev_per_a3_to_gpa(value: float) -> float:
    return float(value) * GPA_PER_EV_PER_A3


def gpa_to_ev_per_a3(value: float) -> float:
    return float(value) / GPA_PER_EV_PER_A3


def ev_per_a3_to_bar(value):
    """Pressure/stress in eV/Å³ (ASE) to bar (LAMMPS metal). Works on floats and numpy arrays."""
    return value * BAR_PER_EV_PER_A3


def bar_to_ev_per_a3(value):
    """Pressure in bar to eV/Å³ (what ASE barostats take). Works on floats and numpy arrays."""
    return value / BAR_PER_EV_PER_A3


def density_g_cm3(mass_amu, volume_a3):
    """Mass density (g/cm³) of ``mass_amu`` (amu) in ``volume_a3`` (Å³). Works on floats and numpy arrays."""
    return mass_amu * G_CM3_PER_AMU_A3 / volume_a3


def ase_time_per_ps() -> float:
    """ASE's internal time unit per ps: multiply a time in ps by this to get ASE time (``1000 * ase.units.fs``)."""
    from ase import units as ase_units

    return FS_PER_PS * ase_units.fs


def ps_to_ase_time(time_ps: float) -> float:
    return float(time_ps) * ase_time_per_ps()


# DFT output units (labelling). CODATA 2018, as ``ase.units.create_units('2018')`` (relative difference < 1e-10), and
# consistent with GPA_PER_EV_PER_A3 above.
#: eV per Hartree
HARTREE_TO_EV = 27.211386245988
#: Å per Bohr
BOHR_TO_ANGSTROM = 0.529177210903
#: eV/Å per Hartree/Bohr (forces of CP2K and pw.x in atomic units)
HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM = HARTREE_TO_EV / BOHR_TO_ANGSTROM
#: eV/Å³ per GPa
GPA_TO_EV_PER_A3 = 1.0 / GPA_PER_EV_PER_A3
#: eV/Å³ per kbar (VASP's stress unit; 1 kbar = 0.1 GPa)
KBAR_TO_EV_PER_A3 = 0.1 / GPA_PER_EV_PER_A3

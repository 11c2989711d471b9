"""Engine-neutral MD protocol: a validated, JSON-serialisable list of stages plus global settings.

Units: time in ps, temperature in K, pressure in bar, rate in K/ps, intervals in steps. Step counts come from
:mod:`aiida_glassml.common.units` only. The LAMMPS renderer (:mod:`aiida_glassml.md.lammps`) and the ASE runner both
consume :class:`MDProtocol`; it is stored as a ``Dict`` node through :meth:`MDProtocol.to_dict`.

Pure Python; no AiiDA imports.
"""

from __future__ import annotations

import dataclasses
import math
import typing as t

from aiida_glassml.common import units

THERMOSTATS = ('nose-hoover', 'langevin')
ENSEMBLES = ('nvt', 'npt')
#: engine-neutral dump fields; positions are always written
DUMP_FIELDS = ('positions', 'velocities', 'forces')


class MDProtocolError(ValueError):
    """An MD protocol that cannot run as written; the message names the problem and the fix."""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_number(where: str, name: str, value, *, positive: bool = False, non_negative: bool = False, unit: str = ''):
    if not _is_number(value):
        raise MDProtocolError(f'{where}: `{name}` must be a finite number{f" in {unit}" if unit else ""}, got {value!r}.')
    if positive and value <= 0:
        raise MDProtocolError(f'{where}: `{name}` must be positive{f" ({unit})" if unit else ""}, got {value}.')
    if non_negative and value < 0:
        raise MDProtocolError(
            f'{where}: `{name}` must not be negative{f" ({unit})" if unit else ""}, got {value}; give a value ≥ 0.'
        )


@dataclasses.dataclass(frozen=True)
class Minimize:
    """Energy minimisation at fixed cell (LAMMPS ``minimize etol ftol maxiter 10*maxiter``; ASE FIRE to ``ftol``)."""

    etol: float = 0.0
    ftol: float = 1.0e-3  # eV/Å
    maxiter: int = 1000

    kind: t.ClassVar[str] = 'minimize'

    def validate(self, where: str) -> None:
        _check_number(where, 'etol', self.etol, non_negative=True)
        _check_number(where, 'ftol', self.ftol, non_negative=True, unit='eV/Å')
        if not isinstance(self.maxiter, int) or isinstance(self.maxiter, bool) or self.maxiter <= 0:
            raise MDProtocolError(f'{where}: `maxiter` must be a positive integer, got {self.maxiter!r}.')
        if self.etol == 0 and self.ftol == 0:
            raise MDProtocolError(f'{where}: `etol` and `ftol` are both 0, so the minimisation never converges; '
                                  'set ftol (eV/Å), e.g. 1e-3.')


@dataclasses.dataclass(frozen=True)
class NVT:
    """Constant volume and temperature for ``time`` ps."""

    temperature: float
    time: float

    kind: t.ClassVar[str] = 'nvt'

    def validate(self, where: str) -> None:
        _check_temperature(where, 'temperature', self.temperature)
        _check_time(where, self.time)


@dataclasses.dataclass(frozen=True)
class NPT:
    """Constant pressure (isotropic, bar) and temperature for ``time`` ps."""

    temperature: float
    pressure: float
    time: float

    kind: t.ClassVar[str] = 'npt'

    def validate(self, where: str) -> None:
        _check_temperature(where, 'temperature', self.temperature)
        _check_number(where, 'pressure', self.pressure, unit='bar')
        _check_time(where, self.time)


@dataclasses.dataclass(frozen=True)
class Ramp:
    """Linear thermostat-target ramp from ``t_start`` to ``t_end`` (K) at ``rate`` K/ps (a magnitude; the sign comes
    from the end points), in NVT or NPT (``pressure`` in bar)."""

    t_start: float
    t_end: float
    rate: float
    ensemble: str = 'nvt'
    pressure: float = 0.0

    kind: t.ClassVar[str] = 'ramp'

    def validate(self, where: str) -> None:
        _check_temperature(where, 't_start', self.t_start)
        _check_temperature(where, 't_end', self.t_end)
        _check_number(where, 'rate', self.rate, unit='K/ps')
        if self.rate == 0:
            raise MDProtocolError(f'{where}: ramp `rate` is 0 K/ps, so the ramp never ends; give a positive rate in '
                                  'K/ps (e.g. 1.0), or use an nvt/npt stage to hold a temperature.')
        if self.rate < 0:
            raise MDProtocolError(f'{where}: ramp `rate` must be positive (K/ps), got {self.rate}; the direction '
                                  'comes from t_start and t_end, so give the magnitude.')
        if self.t_start == self.t_end:
            raise MDProtocolError(f'{where}: ramp from {self.t_start} K to {self.t_end} K has no length; '
                                  'use an nvt/npt stage to hold a temperature.')
        if self.ensemble not in ENSEMBLES:
            raise MDProtocolError(f'{where}: unknown ramp ensemble {self.ensemble!r}; use one of {ENSEMBLES}.')
        _check_number(where, 'pressure', self.pressure, unit='bar')

    @property
    def time(self) -> float:
        """Duration in ps."""
        return units.ramp_time(self.t_start, self.t_end, self.rate)


@dataclasses.dataclass(frozen=True)
class InstantTemperature:
    """Reassign velocities to ``temperature`` (K) at once (LAMMPS ``velocity all create``); no MD steps."""

    temperature: float

    kind: t.ClassVar[str] = 'instant_temperature'

    def validate(self, where: str) -> None:
        _check_number(where, 'temperature', self.temperature, non_negative=True, unit='K')


Stage = t.Union[Minimize, NVT, NPT, Ramp, InstantTemperature]
STAGE_TYPES: dict[str, type] = {cls.kind: cls for cls in (Minimize, NVT, NPT, Ramp, InstantTemperature)}


def _check_temperature(where: str, name: str, value) -> None:
    _check_number(where, name, value, unit='K')
    if value <= 0:
        raise MDProtocolError(f'{where}: `{name}` must be positive (K), got {value}; a thermostat cannot hold '
                              '≤ 0 K. Use a minimize stage to remove kinetic energy.')


def _check_time(where: str, value) -> None:
    _check_number(where, 'time', value, unit='ps')
    if value <= 0:
        raise MDProtocolError(f'{where}: `time` must be positive (ps), got {value}; drop the stage or give its '
                              'length in ps (e.g. 10.0).')


@dataclasses.dataclass(frozen=True)
class GammaTracking:
    """ACE extrapolation-grade tracking: evaluate the max per-atom gamma every ``interval`` steps, save frames with
    gamma ≥ ``gamma_lo`` for selection and stop the run at gamma ≥ ``gamma_hi``."""

    interval: int = 100
    gamma_lo: float = 2.5
    gamma_hi: float = 30.0

    def validate(self) -> None:
        where = 'gamma'
        if not isinstance(self.interval, int) or isinstance(self.interval, bool) or self.interval <= 0:
            raise MDProtocolError(f'{where}: `interval` must be a positive number of steps, got {self.interval!r}.')
        _check_number(where, 'gamma_lo', self.gamma_lo, positive=True)
        _check_number(where, 'gamma_hi', self.gamma_hi, positive=True)
        if self.gamma_lo >= self.gamma_hi:
            raise MDProtocolError(
                f'gamma: gamma_lo ({self.gamma_lo}) must be below gamma_hi ({self.gamma_hi}): frames are saved above '
                'gamma_lo and the run stops at gamma_hi. Lower gamma_lo or raise gamma_hi (the study used 2.5 and 30).'
            )


@dataclasses.dataclass(frozen=True)
class ForceDeviationTracking:
    """Committee uncertainty tracking: every ``interval`` steps the largest per-atom force standard deviation across
    the committee, σ_F,max (eV/Å); frames with σ_F,max > ``sigma_lo`` are saved for selection and the run stops at
    σ_F,max > ``sigma_hi`` (the Na3V2(PO4)3 committee study: 1 and 5 eV/Å; above 5 the run is about to break)."""

    interval: int = 1
    sigma_lo: float = 1.0
    sigma_hi: float = 5.0

    def validate(self) -> None:
        where = 'force_deviation'
        if not isinstance(self.interval, int) or isinstance(self.interval, bool) or self.interval <= 0:
            raise MDProtocolError(f'{where}: `interval` must be a positive number of steps, got {self.interval!r}.')
        _check_number(where, 'sigma_lo', self.sigma_lo, non_negative=True, unit='eV/Å')
        _check_number(where, 'sigma_hi', self.sigma_hi, positive=True, unit='eV/Å')
        if self.sigma_lo >= self.sigma_hi:
            raise MDProtocolError(
                f'force_deviation: sigma_lo ({self.sigma_lo} eV/Å) must be below sigma_hi ({self.sigma_hi} eV/Å): '
                'frames above sigma_lo are saved and the run stops above sigma_hi. Lower sigma_lo or raise sigma_hi '
                '(the committee study used 1 and 5 eV/Å).'
            )


#: what an exploration tracks: the ACE extrapolation grade or a committee's force deviation
TRACKINGS = ('gamma', 'force_deviation')


@dataclasses.dataclass
class MDProtocol:
    """A list of stages plus global settings. See the module docstring for units."""

    stages: list = dataclasses.field(default_factory=list)
    timestep: float = 0.001  # ps
    thermostat: str = 'nose-hoover'
    tdamp: float = 0.1  # ps
    pdamp: float = 1.0  # ps
    seed: int = 12345
    #: K; velocities drawn at this temperature before the first stage. None: the first thermostatted stage's
    #: temperature; 0: start at rest.
    initial_temperature: float | None = None
    dump_interval: int = 1000  # steps; 0 writes no trajectory
    dump_fields: tuple = ('positions',)
    thermo_interval: int = 100  # steps
    gamma: GammaTracking | None = None
    #: committee force-deviation tracking (ASE with a committee only); exclusive with ``gamma``
    force_deviation: ForceDeviationTracking | None = None

    # -- validation ------------------------------------------------------------------------------------------------
    def validate(self) -> MDProtocol:
        """Raise :class:`MDProtocolError` on the first problem; return ``self`` so calls chain."""
        if not isinstance(self.stages, (list, tuple)) or not self.stages:
            raise MDProtocolError('the protocol has no stages; give at least one, e.g. [NVT(300.0, 10.0)].')
        for index, stage in enumerate(self.stages):
            if not isinstance(stage, tuple(STAGE_TYPES.values())):
                raise MDProtocolError(f'stage {index} is {stage!r}, not a stage; use Minimize, NVT, NPT, Ramp or '
                                      'InstantTemperature from aiida_glassml.md.protocol.')
            stage.validate(f'stage {index} ({stage.kind})')
        _check_number('protocol', 'timestep', self.timestep, positive=True, unit='ps')
        if self.timestep > units.MAX_SANE_TIMESTEP_PS:
            raise MDProtocolError(
                f'protocol: timestep {self.timestep} ps is {units.ps_to_fs(self.timestep):g} fs; the timestep is in '
                f'ps, so 1 fs is 0.001. Give it in ps (at most {units.MAX_SANE_TIMESTEP_PS} ps).'
            )
        if self.thermostat not in THERMOSTATS:
            raise MDProtocolError(f'protocol: unknown thermostat {self.thermostat!r}; use one of {THERMOSTATS}.')
        _check_number('protocol', 'tdamp', self.tdamp, positive=True, unit='ps')
        _check_number('protocol', 'pdamp', self.pdamp, positive=True, unit='ps')
        for name in ('tdamp', 'pdamp'):
            if getattr(self, name) < 2 * self.timestep:
                raise MDProtocolError(f'protocol: `{name}` ({getattr(self, name)} ps) is shorter than two timesteps '
                                      f'({self.timestep} ps); damping times are in ps (default tdamp 0.1, pdamp 1.0).')
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 < self.seed < 900_000_000:
            raise MDProtocolError(f'protocol: `seed` must be an integer in 1..899999999 (LAMMPS), got {self.seed!r}.')
        if self.initial_temperature is not None:
            _check_number('protocol', 'initial_temperature', self.initial_temperature, non_negative=True, unit='K')
        for name in ('dump_interval', 'thermo_interval'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise MDProtocolError(f'protocol: `{name}` must be a non-negative number of steps, got {value!r}.')
        if self.thermo_interval == 0:
            raise MDProtocolError('protocol: `thermo_interval` must be positive (steps); thermo output is parsed.')
        unknown = sorted(set(self.dump_fields) - set(DUMP_FIELDS))
        if unknown:
            raise MDProtocolError(f'protocol: unknown dump fields {unknown}; choose from {DUMP_FIELDS}.')
        if self.gamma is not None:
            if not isinstance(self.gamma, GammaTracking):
                raise MDProtocolError(f'protocol: `gamma` must be a GammaTracking or None, got {self.gamma!r}.')
            self.gamma.validate()
        if self.force_deviation is not None:
            if not isinstance(self.force_deviation, ForceDeviationTracking):
                raise MDProtocolError(f'protocol: `force_deviation` must be a ForceDeviationTracking or None, got '
                                      f'{self.force_deviation!r}.')
            if self.gamma is not None:
                raise MDProtocolError('protocol: track either `gamma` (one ACE potential with an active set) or '
                                      '`force_deviation` (a committee), not both; set the other to None.')
            self.force_deviation.validate()
        return self

    @property
    def tracking(self) -> str | None:
        """``gamma``, ``force_deviation`` or None: which uncertainty the run records and halts on."""
        return 'gamma' if self.gamma is not None else 'force_deviation' if self.force_deviation is not None else None

    # -- steps -----------------------------------------------------------------------------------------------------
    def stage_steps(self, stage: Stage) -> int:
        """MD steps of one stage (0 for minimise and instant-temperature stages)."""
        if isinstance(stage, (NVT, NPT)):
            return units.steps_from_time(stage.time, self.timestep)
        if isinstance(stage, Ramp):
            return units.ramp_steps(stage.t_start, stage.t_end, stage.rate, self.timestep)
        return 0

    @property
    def total_steps(self) -> int:
        return sum(self.stage_steps(stage) for stage in self.stages)

    @property
    def total_time(self) -> float:
        """Simulated time (ps) of all MD steps."""
        return units.time_from_steps(self.total_steps, self.timestep)

    @property
    def is_constant_pressure(self) -> bool:
        return any(isinstance(s, NPT) or (isinstance(s, Ramp) and s.ensemble == 'npt') for s in self.stages)

    def resolved_initial_temperature(self) -> float:
        """Temperature (K) of the initial velocities: ``initial_temperature`` or the first thermostat target."""
        if self.initial_temperature is not None:
            return float(self.initial_temperature)
        for stage in self.stages:
            if isinstance(stage, (NVT, NPT, InstantTemperature)):
                return float(stage.temperature)
            if isinstance(stage, Ramp):
                return float(stage.t_start)
        return 0.0

    # -- serialisation ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-serialisable dict; ``MDProtocol.from_dict(p.to_dict()) == p``."""
        return {
            'stages': [{'kind': stage.kind, **dataclasses.asdict(stage)} for stage in self.stages],
            'timestep': self.timestep,
            'thermostat': self.thermostat,
            'tdamp': self.tdamp,
            'pdamp': self.pdamp,
            'seed': self.seed,
            'initial_temperature': self.initial_temperature,
            'dump_interval': self.dump_interval,
            'dump_fields': list(self.dump_fields),
            'thermo_interval': self.thermo_interval,
            'gamma': dataclasses.asdict(self.gamma) if self.gamma is not None else None,
            # only when set, so the stored protocols of runs without a committee stay as they were
            **({'force_deviation': dataclasses.asdict(self.force_deviation)} if self.force_deviation else {}),
        }

    @classmethod
    def from_dict(cls, data: t.Mapping, validate: bool = True) -> MDProtocol:
        """Build (and by default validate) a protocol from :meth:`to_dict` output; unknown keys are errors."""
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MDProtocolError(f'protocol: unknown keys {unknown}; known keys are {sorted(known)}.')
        stages = []
        for index, raw in enumerate(data.pop('stages', [])):
            raw = dict(raw)
            kind = raw.pop('kind', None)
            if kind not in STAGE_TYPES:
                raise MDProtocolError(f'stage {index}: unknown kind {kind!r}; use one of {sorted(STAGE_TYPES)}.')
            stage_cls = STAGE_TYPES[kind]
            fields = {f.name for f in dataclasses.fields(stage_cls)}
            bad = sorted(set(raw) - fields)
            if bad:
                raise MDProtocolError(f'stage {index} ({kind}): unknown keys {bad}; known keys are {sorted(fields)}.')
            try:
                stages.append(stage_cls(**raw))
            except TypeError as exc:
                raise MDProtocolError(f'stage {index} ({kind}): {exc}') from exc
        gamma = data.pop('gamma', None)
        if gamma is not None:
            if not isinstance(gamma, t.Mapping):
                raise MDProtocolError(f'gamma: expected a mapping of GammaTracking fields or None, got {gamma!r}.')
            fields = {f.name for f in dataclasses.fields(GammaTracking)}
            bad = sorted(set(gamma) - fields)
            if bad:
                raise MDProtocolError(f'gamma: unknown keys {bad}; known keys are {sorted(fields)} '
                                      '(e.g. {"interval": 100, "gamma_lo": 2.5, "gamma_hi": 30.0}).')
            gamma = GammaTracking(**gamma)
        force_deviation = data.pop('force_deviation', None)
        if force_deviation is not None:
            fields = {f.name for f in dataclasses.fields(ForceDeviationTracking)}
            if not isinstance(force_deviation, t.Mapping) or set(force_deviation) - fields:
                raise MDProtocolError(f'force_deviation: expected a mapping with keys among {sorted(fields)} (e.g. '
                                      f'{{"interval": 1, "sigma_lo": 1.0, "sigma_hi": 5.0}}), got {force_deviation!r}.')
            force_deviation = ForceDeviationTracking(**force_deviation)
        if 'dump_fields' in data:
            data['dump_fields'] = tuple(data['dump_fields'])
        protocol = cls(stages=stages, gamma=gamma, force_deviation=force_deviation, **data)
        return protocol.validate() if validate else protocol

    def describe(self) -> list[str]:
        """One human-readable line per stage (for reports)."""
        lines = []
        for index, stage in enumerate(self.stages):
            fields = ', '.join(f'{k}={v}' for k, v in dataclasses.asdict(stage).items())
            lines.append(f'{index}: {stage.kind}({fields}) -> {self.stage_steps(stage)} steps')
        return lines


#: the NaFePO4 study's melt-quench (times ps, T K, P bar, rate K/ps)
STUDY_MELT_QUENCH = {
    't_low': 300.0,
    't_high': 3000.0,
    'pressure': 0.0,
    'low_nvt_time': 10.0,
    'low_npt_time': 10.0,
    'high_nvt_time': 100.0,
    'high_npt_time': 100.0,
    'cooling_rate': 1.0,
    'final_time': 100.0,
}
#: the ``fast`` variant: every hold 100× shorter and cooling 100× faster (30.2 ps of MD in all at the default 1 K/ps study rate scaled to 100 K/ps)
FAST_TIME_SCALE = 0.01


def melt_quench(
    *,
    t_low: float = STUDY_MELT_QUENCH['t_low'],
    t_high: float = STUDY_MELT_QUENCH['t_high'],
    pressure: float = STUDY_MELT_QUENCH['pressure'],
    cooling_rate: float | None = None,
    time_scale: float | None = None,
    fast: bool = False,
    minimize: bool = True,
    **settings,
) -> MDProtocol:
    """The NaFePO4 study's melt-quench: minimise; ``t_low`` 10 ps NVT then 10 ps NPT; jump to ``t_high``: 100 ps NVT
    then 100 ps NPT; cool at 1 K/ps in NPT to ``t_low``; 100 ps NPT at ``t_low``.

    ``time_scale`` multiplies every hold time and the cooling time (the rate becomes 1 K/ps ÷ time_scale), so the
    whole schedule shrinks uniformly; ``fast=True`` means ``time_scale=0.01``. An explicit ``cooling_rate`` (K/ps)
    wins over the scaled one. Remaining keyword arguments are :class:`MDProtocol` settings (timestep, seed, gamma...).
    """
    scale = time_scale if time_scale is not None else (FAST_TIME_SCALE if fast else 1.0)
    if not _is_number(scale) or scale <= 0:
        raise MDProtocolError(f'melt_quench: `time_scale` must be positive, got {scale!r}.')
    study = STUDY_MELT_QUENCH
    rate = cooling_rate if cooling_rate is not None else study['cooling_rate'] / scale
    stages: list = [Minimize()] if minimize else []
    stages += [
        NVT(t_low, study['low_nvt_time'] * scale),
        NPT(t_low, pressure, study['low_npt_time'] * scale),
        InstantTemperature(t_high),
        NVT(t_high, study['high_nvt_time'] * scale),
        NPT(t_high, pressure, study['high_npt_time'] * scale),
        Ramp(t_high, t_low, rate, ensemble='npt', pressure=pressure),
        NPT(t_low, pressure, study['final_time'] * scale),
    ]
    settings.setdefault('initial_temperature', t_low)
    return MDProtocol(stages=stages, **settings).validate()


#: the NaFePO4 study's active-learning exploration (its balace.yaml: 5000 K, cool at 10 K/ps to 0.01 K, a snapshot
#: every 10^5 steps = 1000 K, gamma checked every step with c_min 2.5 / c_max 30)
STUDY_EXPLORATION = {
    't_high': 5000.0,
    'hold_time': 10.0,
    'cooling_rate': 10.0,
    't_end': 0.01,
    'snapshot_every': 1000.0,
    'gamma_lo': 2.5,
    'gamma_hi': 30.0,
}


def exploration(
    *,
    t_high: float = STUDY_EXPLORATION['t_high'],
    hold_time: float = STUDY_EXPLORATION['hold_time'],
    cooling_rate: float = STUDY_EXPLORATION['cooling_rate'],
    t_end: float = STUDY_EXPLORATION['t_end'],
    snapshot_every: float = STUDY_EXPLORATION['snapshot_every'],
    gamma_interval: int = 1,
    gamma_lo: float = STUDY_EXPLORATION['gamma_lo'],
    gamma_hi: float = STUDY_EXPLORATION['gamma_hi'],
    tracking: str = 'gamma',
    sigma_lo: float = ForceDeviationTracking.sigma_lo,
    sigma_hi: float = ForceDeviationTracking.sigma_hi,
    **settings,
) -> MDProtocol:
    """The study's active-learning exploration: NVT at ``t_high`` for ``hold_time`` ps, then cool in NVT at
    ``cooling_rate`` K/ps to ``t_end`` (0 K is not a thermostat target, so 0.01 K as in the study), a trajectory
    snapshot every ``snapshot_every`` K of cooling, and the extrapolation grade checked every ``gamma_interval`` steps
    (1: every step, as the study; a structure can blow up between sparser checks). ``tracking='force_deviation'``
    checks a committee's σ_F,max instead, at the same interval, with the window ``sigma_lo``/``sigma_hi`` (eV/Å).
    Remaining keyword arguments are :class:`MDProtocol` settings (timestep, seed, thermostat...)."""
    _check_number('exploration', 'snapshot_every', snapshot_every, positive=True, unit='K')
    _check_number('exploration', 'cooling_rate', cooling_rate, positive=True, unit='K/ps')
    timestep = settings.get('timestep', MDProtocol.timestep)
    _check_number('exploration', 'timestep', timestep, positive=True, unit='ps')
    snapshot_steps = max(1, units.steps_from_time(snapshot_every / cooling_rate, timestep))
    settings.setdefault('dump_interval', snapshot_steps)
    settings.setdefault('thermo_interval', max(1, min(snapshot_steps, 100)))
    settings.setdefault('initial_temperature', t_high)
    stages = [NVT(t_high, hold_time), Ramp(t_high, t_end, cooling_rate, ensemble='nvt')]
    trackers = _uncertainty_tracking(tracking, gamma_interval, gamma_lo, gamma_hi, sigma_lo, sigma_hi)
    return MDProtocol(stages=stages, **trackers, **settings).validate()


def stability_test(
    *, temperature: float = 5000.0, time: float = 10.0, gamma_interval: int = 1, gamma_lo: float = 2.5,
    gamma_hi: float = 30.0, tracking: str = 'gamma', sigma_lo: float = ForceDeviationTracking.sigma_lo,
    sigma_hi: float = ForceDeviationTracking.sigma_hi, **settings,
) -> MDProtocol:  # fmt: skip
    """The study's stability test of a fitted potential: NVT at ``temperature`` for ``time`` ps from a dense random
    structure, gamma (or a committee's σ_F,max, ``tracking='force_deviation'``) checked every ``gamma_interval``
    steps; the run halts at ``gamma_hi`` (``sigma_hi``)."""
    settings.setdefault('initial_temperature', temperature)
    trackers = _uncertainty_tracking(tracking, gamma_interval, gamma_lo, gamma_hi, sigma_lo, sigma_hi)
    return MDProtocol(stages=[NVT(temperature, time)], **trackers, **settings).validate()


def _uncertainty_tracking(tracking, interval, gamma_lo, gamma_hi, sigma_lo, sigma_hi) -> dict:
    if tracking == 'gamma':
        return {'gamma': GammaTracking(interval=interval, gamma_lo=gamma_lo, gamma_hi=gamma_hi)}
    if tracking == 'force_deviation':
        return {'force_deviation': ForceDeviationTracking(interval=interval, sigma_lo=sigma_lo, sigma_hi=sigma_hi)}
    raise MDProtocolError(f'unknown uncertainty tracking {tracking!r}; use one of {TRACKINGS}.')


def cooling_stage_index(protocol: MDProtocol) -> int | None:
    """Index of the last cooling ramp (t_end < t_start): where a melt-quench's cooling curve comes from."""
    for index in range(len(protocol.stages) - 1, -1, -1):
        stage = protocol.stages[index]
        if isinstance(stage, Ramp) and stage.t_end < stage.t_start:
            return index
    return None


def stage_step_ranges(protocol: MDProtocol) -> list[tuple[int, int]]:
    """``(first_step, last_step)`` of each stage in the run's global step count (LAMMPS ``reset_timestep 0`` at
    the start; minimisation and instant-temperature stages take no MD steps)."""
    ranges, step = [], 0
    for stage in protocol.stages:
        n = protocol.stage_steps(stage)
        ranges.append((step, step + n))
        step += n
    return ranges


#: the NaFePO4 study's diffusion runs (times ps, T K, rate K/ps): heat from 300 K at 1 K/ps (in NVT, and separately
#: in NPT), 100 ps at the target in the same ensemble, then 10 ns NVT production
STUDY_DIFFUSION = {
    't_start': 300.0,
    'heating_rate': 1.0,
    'equilibration_time': 100.0,
    'production_time': 10_000.0,
    'pressure': 0.0,
}
#: heating variants of :func:`diffusion_run`
HEATING_VARIANTS = ('nvt', 'npt')


def diffusion_run(
    temperature: float,
    heating: str = 'nvt',
    *,
    t_start: float = STUDY_DIFFUSION['t_start'],
    heating_rate: float = STUDY_DIFFUSION['heating_rate'],
    equilibration_time: float = STUDY_DIFFUSION['equilibration_time'],
    production_time: float = STUDY_DIFFUSION['production_time'],
    pressure: float = STUDY_DIFFUSION['pressure'],
    minimize: bool = False,
    **settings,
) -> MDProtocol:
    """One diffusion run of the study: heat from ``t_start`` to ``temperature`` at ``heating_rate`` K/ps in the
    ``heating`` ensemble (``nvt`` or ``npt``), hold ``equilibration_time`` ps there in the same ensemble, then
    ``production_time`` ps NVT (the last stage; :func:`production_first_step` gives its first step). No ramp when
    ``temperature == t_start``. Remaining keyword arguments are :class:`MDProtocol` settings."""
    where = 'diffusion_run'
    if heating not in HEATING_VARIANTS:
        raise MDProtocolError(f'{where}: unknown heating variant {heating!r}; use one of {HEATING_VARIANTS}.')
    _check_temperature(where, 'temperature', temperature)
    _check_temperature(where, 't_start', t_start)
    for name, value in (('heating_rate', heating_rate), ('equilibration_time', equilibration_time),
                        ('production_time', production_time)):  # fmt: skip
        _check_number(where, name, value, positive=True, unit='K/ps' if name == 'heating_rate' else 'ps')
    stages: list = [Minimize()] if minimize else []
    if temperature != t_start:
        stages.append(Ramp(t_start, temperature, heating_rate, ensemble=heating, pressure=pressure))
    stages.append(NPT(temperature, pressure, equilibration_time) if heating == 'npt'
                  else NVT(temperature, equilibration_time))  # fmt: skip
    stages.append(NVT(temperature, production_time))
    settings.setdefault('initial_temperature', t_start)
    return MDProtocol(stages=stages, **settings).validate()


def production_first_step(protocol: MDProtocol) -> int:
    """First MD step of the last stage (the production run of :func:`diffusion_run`)."""
    return stage_step_ranges(protocol)[-1][0]

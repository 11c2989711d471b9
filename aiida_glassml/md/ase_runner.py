"""Run an engine-neutral :class:`~aiida_glassml.md.protocol.MDProtocol` in ASE.

Pure ASE/numpy, no AiiDA: :class:`AseMDCalculation` writes ``input.json`` and a small ``run_md.py``
(:func:`run_script`, which imports this module and calls :func:`main` on ``input.json``) and runs
``python run_md.py`` in its working directory. ``python -m aiida_glassml.md.ase_runner input.json`` does the same. The files written here are read back by
:mod:`aiida_glassml.parsers.ase_md` into the node layout of :mod:`aiida_glassml.md.outputs`, the same as LAMMPS.

Integrators (ASE ≥ 3.29), chosen to match LAMMPS ``fix nvt``/``fix npt iso``:

- ``nose-hoover``: :class:`ase.md.nose_hoover_chain.NoseHooverChainNVT` (NVT) and
  :class:`ase.md.nose_hoover_chain.IsotropicMTKNPT` (NPT, isotropic MTK barostat), chains of 3;
- ``langevin``: :class:`ase.md.langevinbaoab.LangevinBAOAB` (NVT, or hydrostatic NPT).

A ramp moves the thermostat target linearly every step, as LAMMPS ``fix nvt temp T0 T1`` does (the Nosé–Hoover
masses follow the target temperature, as LAMMPS recomputes them). Minimisation is FIRE at fixed cell to ``ftol``.

Files written into the output folder (names in :data:`FILES`): thermo table, full dump (extxyz, every
``dump_interval`` steps; positions wrapped into the cell with an integer ``images`` array, the LAMMPS layout),
final structure (extxyz), gamma log, extrapolative frames (max gamma ≥ ``gamma_lo``) and
``results.json``. With a committee (calculator type ``committee``) the dynamics follow the members' mean and the
force-deviation log and candidate frames (σ_F,max > ``sigma_lo``) take the place of gamma's.
"""

from __future__ import annotations

import importlib
import json
import math
import pathlib
import sys
import time
import traceback
import typing as t

import numpy as np

from aiida_glassml.common import units
from aiida_glassml.md.outputs import THERMO_COLUMNS, wrap_with_images
from aiida_glassml.md.protocol import NPT, NVT, InstantTemperature, MDProtocol, Minimize, Ramp

#: output file names (the parser imports these)
FILES = {
    'input': 'input.json',
    'script': 'run_md.py',
    'structure': 'structure.extxyz',
    'thermo': 'thermo.dat',
    'dump': 'dump.extxyz',
    'final': 'final.extxyz',
    'gamma': 'gamma.dat',
    'force_deviation': 'force_deviation.dat',
    'extrapolative': 'extrapolative.extxyz',
    'results': 'results.json',
}
TCHAIN = 3  # Nosé–Hoover chain length (LAMMPS default)


class AseRunnerError(ValueError):
    """The runner input cannot run as written."""


class _Halt(Exception):
    """Raised inside the MD loop to stop the run with a stop reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


# -- calculators -------------------------------------------------------------------------------------------------
def load_calculator(spec: t.Mapping, folder: pathlib.Path | str = '.'):
    """Build the ASE calculator described by ``spec``.

    ``{'type': 'ace', 'yaml': 'potential.yaml', 'asi': 'potential.asi' | None}``: pyace ``PyACECalculator``, with
    per-atom gamma in ``calc.results['gamma']`` when an active set is given.
    ``{'type': 'ase', 'name': NAME, 'kwargs': {...}}``: NAME is ``module:Class`` (or ``module:Class.factory``) or
    ``module.Class``, an entry point in group ``ase.calculators``, or a calculator name ASE knows (``emt``, ``lj``...).
    ``{'type': 'mlip', ...}``: an MLIP from local files only (:func:`aiida_glassml.common.mlip.build_calculator`).
    ``{'type': 'committee', 'members': [spec, ...]}``: the mean of the members, reporting their force deviation
    (:class:`aiida_glassml.md.committee.CommitteeCalculator`).
    """
    folder = pathlib.Path(folder)
    kind = spec.get('type')
    if kind == 'committee':
        from aiida_glassml.md.committee import CommitteeCalculator

        return CommitteeCalculator([load_calculator(member, folder) for member in spec['members']])
    if kind == 'ace':
        from pyace import PyACECalculator

        calc = PyACECalculator(basis_set=str(folder / spec['yaml']))
        if spec.get('asi'):
            calc.set_active_set(str(folder / spec['asi']))
        return calc
    if kind == 'ase':
        return resolve_calculator_class(spec['name'])(**dict(spec.get('kwargs') or {}))
    if kind == 'mlip':
        from aiida_glassml.common import mlip

        try:
            return mlip.build_calculator(spec, folder, log=lambda msg: print(msg, flush=True))
        except mlip.MlipError as exc:
            raise AseRunnerError(str(exc)) from None
    raise AseRunnerError(f"calculator type {kind!r} is not known; use 'ace', 'ase', 'mlip' or 'committee'.")


def resolve_calculator_class(name: str):
    """The calculator class for ``name`` (see :func:`load_calculator`); raises AseRunnerError naming the forms."""
    if ':' in name or '.' in name:
        # `module:Class.factory` walks attributes after the colon; `module.Class` splits at the last dot
        module_name, _, path = name.partition(':') if ':' in name else name.rpartition('.')
        try:
            found = importlib.import_module(module_name)
            for attr in path.split('.'):
                found = getattr(found, attr)
            return found
        except (ImportError, AttributeError, ValueError) as exc:
            raise AseRunnerError(f'cannot import ASE calculator {name!r}: {exc}. Give `module:Class`, e.g. '
                                 '`ase.calculators.emt:EMT`.') from exc  # fmt: skip
    from importlib.metadata import entry_points

    for entry_point in entry_points(group='ase.calculators'):
        if entry_point.name == name:
            return entry_point.load()
    from ase.calculators.calculator import get_calculator_class

    try:
        return get_calculator_class(name.lower())
    except (KeyError, ImportError, ValueError) as exc:
        raise AseRunnerError(f'unknown ASE calculator {name!r}: not an `ase.calculators` entry point nor an ASE '
                             'calculator name; give an import path such as `ase.calculators.emt:EMT`.') from exc  # fmt: skip


# -- integrators -------------------------------------------------------------------------------------------------
def _make_dynamics(atoms, protocol: MDProtocol, temperature: float, pressure: float | None, rng):
    from ase.md.langevinbaoab import LangevinBAOAB
    from ase.md.nose_hoover_chain import IsotropicMTKNPT, NoseHooverChainNVT

    dt = units.ps_to_ase_time(protocol.timestep)
    tdamp = units.ps_to_ase_time(protocol.tdamp)
    pdamp = units.ps_to_ase_time(protocol.pdamp)
    if protocol.thermostat == 'langevin':
        stress = None if pressure is None else units.bar_to_ev_per_a3(pressure)
        return LangevinBAOAB(atoms, dt, temperature_K=temperature, externalstress=stress, hydrostatic=True,
                             T_tau=tdamp, P_tau=pdamp, rng=rng)  # fmt: skip
    if pressure is None:
        return NoseHooverChainNVT(atoms, dt, temperature_K=temperature, tdamp=tdamp, tchain=TCHAIN)
    return IsotropicMTKNPT(atoms, dt, temperature_K=temperature, pressure_au=units.bar_to_ev_per_a3(pressure),
                           tdamp=tdamp, pdamp=pdamp, tchain=TCHAIN, pchain=TCHAIN)  # fmt: skip


def set_target_temperature(dynamics, temperature: float) -> None:
    """Move a running integrator's target temperature (for ramps) without resetting its thermostat state.

    ASE's Nosé–Hoover chain and MTK barostat have no public setter: their masses are proportional to kT, so they are
    rescaled with it (what LAMMPS does every step of a ramp).
    """
    from ase import units as ase_units

    if hasattr(dynamics, 'set_temperature'):  # LangevinBAOAB
        dynamics.set_temperature(temperature_K=temperature)
        return
    thermostat = getattr(dynamics, '_thermostat', None)
    if thermostat is None or not hasattr(thermostat, '_kT'):
        raise AseRunnerError(f'cannot ramp the temperature of {type(dynamics).__name__} with this ASE version; '
                             'install ase==3.29 (Nosé–Hoover chain internals) or use thermostat `langevin`.')  # fmt: skip
    kt = ase_units.kB * temperature
    scale = kt / thermostat._kT
    thermostat._kT = kt
    thermostat._Q = thermostat._Q * scale
    barostat = getattr(dynamics, '_barostat', None)
    if barostat is not None:
        barostat._kT = kt
        barostat._W *= scale
        barostat._R = barostat._R * scale
        dynamics._kT = kt
        dynamics._temperature_K = temperature


def _set_velocities(atoms, temperature: float, rng) -> None:
    # LAMMPS `velocity all create T seed mom yes`: Maxwell–Boltzmann, no net momentum, scaled to exactly T.
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    if temperature <= 0:
        atoms.set_momenta(np.zeros((len(atoms), 3)))
        return
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng, force_temp=True)
    Stationary(atoms)


# -- the run -----------------------------------------------------------------------------------------------------
class _Recorder:
    """Writes thermo, dump, gamma and extrapolative frames as the run goes (files flushed, so a killed run keeps
    what it reached)."""

    def __init__(self, atoms, protocol: MDProtocol, folder: pathlib.Path):
        self.atoms = atoms
        self.protocol = protocol
        self.folder = folder
        self.mass = float(atoms.get_masses().sum())
        self.thermo = open(folder / FILES['thermo'], 'w', encoding='utf-8')  # noqa: SIM115
        self.thermo.write('# ' + ' '.join(THERMO_COLUMNS) + '\n')
        self.gamma_file = None
        if protocol.gamma is not None:
            self.gamma_file = open(folder / FILES['gamma'], 'w', encoding='utf-8')  # noqa: SIM115
            self.gamma_file.write('# step max_gamma\n')
            (folder / FILES['extrapolative']).write_text('')
        self.sigma_file = None
        if protocol.force_deviation is not None:
            self.sigma_file = open(folder / FILES['force_deviation'], 'w', encoding='utf-8')  # noqa: SIM115
            self.sigma_file.write('# step max_force_deviation(eV/A)\n')
            (folder / FILES['extrapolative']).write_text('')
        if protocol.dump_interval:
            (folder / FILES['dump']).write_text('')
        self.last_thermo = -1
        self.last_dump = -1
        self.last_gamma = -1
        self.n_dump = 0
        self.n_extrapolative = 0
        self.max_gamma: float | None = None
        self.last_sigma = -1
        self.max_sigma: float | None = None
        self.last_line: dict = {}

    def close(self):
        self.thermo.close()
        if self.gamma_file is not None:
            self.gamma_file.close()
        if self.sigma_file is not None:
            self.sigma_file.close()

    def _pressure_bar(self) -> float:
        from ase.calculators.calculator import PropertyNotImplementedError

        try:
            stress = self.atoms.get_stress(voigt=False, include_ideal_gas=True)
        except (PropertyNotImplementedError, NotImplementedError):
            return float('nan')
        return float(units.ev_per_a3_to_bar(-np.trace(stress) / 3.0))

    def write_thermo(self, step: int) -> None:
        if step == self.last_thermo:
            return
        self.last_thermo = step
        atoms = self.atoms
        epot = float(atoms.get_potential_energy())
        ekin = float(atoms.get_kinetic_energy())
        volume = float(atoms.get_volume())
        line = {
            'step': step,
            'time': units.time_from_steps(step, self.protocol.timestep),
            'temperature': float(atoms.get_temperature()),
            'pressure': self._pressure_bar(),
            'volume': volume,
            'potential_energy': epot,
            'total_energy': epot + ekin,
            'density': float(units.density_g_cm3(self.mass, volume)),
        }
        if not all(math.isfinite(line[k]) for k in ('temperature', 'potential_energy', 'volume')):
            raise _Halt('error', f'non-finite energy, temperature or volume at step {step}: {line}')
        self.last_line = line
        self.thermo.write(' '.join(repr(line[k]) if k != 'step' else str(step) for k in THERMO_COLUMNS) + '\n')
        self.thermo.flush()

    def _frame(self, step: int, **info):
        # ASE integrates unwrapped positions; frames store them wrapped + integer images, as LAMMPS dumps x y z ix iy iz
        frame = self.atoms.copy()
        frame.calc = None
        wrapped, images = wrap_with_images(self.atoms.positions, self.atoms.cell.array)
        frame.positions = wrapped
        frame.arrays['images'] = images
        frame.info = {'step': step, 'time': units.time_from_steps(step, self.protocol.timestep), **info}
        fields = self.protocol.dump_fields
        if 'velocities' not in fields:
            frame.arrays.pop('momenta', None)  # keep the dump lean
        if 'forces' in fields:
            frame.arrays['forces'] = np.array(self.atoms.get_forces())
        magmoms = self.atoms.calc.results.get('magmoms') if self.atoms.calc is not None else None
        if magmoms is not None:  # CHGNet predicts moments: oxidation states during MD with the moment bins
            frame.arrays['magmoms'] = np.asarray(magmoms, dtype=float).reshape(-1)
        if self.protocol.force_deviation is not None and 'max_force_deviation' not in frame.info:
            frame.info['max_force_deviation'] = self._force_deviation()[1]
        return frame

    def write_dump(self, step: int) -> None:
        from ase.io import write

        if not self.protocol.dump_interval or step == self.last_dump:
            return
        self.last_dump = step
        write(self.folder / FILES['dump'], self._frame(step), format='extxyz', append=True)
        self.n_dump += 1

    def check_gamma(self, step: int) -> None:
        """Record max gamma; save the frame at ≥ gamma_lo; raise ``_Halt('gamma_halt')`` at ≥ gamma_hi."""
        from ase.io import write

        tracking = self.protocol.gamma
        if tracking is None or step == self.last_gamma:
            return
        self.last_gamma = step
        self.atoms.get_potential_energy()  # results are current for these positions
        gamma = self.atoms.calc.results.get('gamma')
        if gamma is None:
            raise AseRunnerError(
                'gamma tracking is on but the calculator reports no `gamma`; use an ACE potential with an active '
                'set (.asi, from `pace_activeset`) or set the protocol `gamma` to None.'
            )
        gamma = np.asarray(gamma, dtype=float)
        value = float(gamma.max())
        self.max_gamma = value if self.max_gamma is None else max(self.max_gamma, value)
        self.gamma_file.write(f'{step} {value!r}\n')
        self.gamma_file.flush()
        if value >= tracking.gamma_lo:
            frame = self._frame(step, max_gamma=value)
            frame.arrays['gamma'] = gamma
            write(self.folder / FILES['extrapolative'], frame, format='extxyz', append=True)
            self.n_extrapolative += 1
        if value >= tracking.gamma_hi:
            raise _Halt('gamma_halt', f'max gamma {value:.3f} reached gamma_hi {tracking.gamma_hi} at step {step}')

    def _force_deviation(self) -> tuple[np.ndarray, float]:
        """Per-atom σ_F and σ_F,max of the committee at the current positions."""
        self.atoms.get_forces()  # results are current for these positions
        sigma = self.atoms.calc.results.get('force_deviation')
        if sigma is None:
            raise AseRunnerError(
                'force-deviation tracking is on but the calculator reports no `force_deviation`; run a committee '
                '(calculator type `committee`) or set the protocol `force_deviation` to None.'
            )
        sigma = np.asarray(sigma, dtype=float)
        return sigma, float(sigma.max())

    def check_force_deviation(self, step: int) -> None:
        """Record σ_F,max; save the frame above sigma_lo; raise ``_Halt('force_deviation_halt')`` above sigma_hi."""
        from ase.io import write

        tracking = self.protocol.force_deviation
        if tracking is None or step == self.last_sigma:
            return
        self.last_sigma = step
        sigma, value = self._force_deviation()
        self.max_sigma = value if self.max_sigma is None else max(self.max_sigma, value)
        self.sigma_file.write(f'{step} {value!r}\n')
        self.sigma_file.flush()
        if value > tracking.sigma_lo:
            frame = self._frame(step, max_force_deviation=value)
            frame.arrays['force_deviation'] = sigma
            write(self.folder / FILES['extrapolative'], frame, format='extxyz', append=True)
            self.n_extrapolative += 1
        if value > tracking.sigma_hi:
            raise _Halt('force_deviation_halt', f'committee force deviation {value:.3f} eV/Å exceeded sigma_hi '
                                                f'{tracking.sigma_hi} eV/Å at step {step}')  # fmt: skip

    def record(self, step: int, force: bool = False) -> None:
        p = self.protocol
        if p.gamma is not None and (force or step % p.gamma.interval == 0):
            self.check_gamma(step)
        if p.force_deviation is not None and (force or step % p.force_deviation.interval == 0):
            self.check_force_deviation(step)
        if force or step % p.thermo_interval == 0:
            self.write_thermo(step)
        if p.dump_interval and (force or step % p.dump_interval == 0):
            self.write_dump(step)


def run_protocol(atoms, calculator, protocol: MDProtocol, folder: str | pathlib.Path = '.',
                 log: t.Callable[[str], None] | None = print) -> dict:  # fmt: skip
    """Run ``protocol`` on ``atoms`` (modified in place) with ``calculator``; write the output files into ``folder``
    and return the results dict (also written to ``results.json``). A gamma halt is a normal return with
    ``stop_reason='gamma_halt'`` (a committee's: ``'force_deviation_halt'``)."""
    import ase
    from ase.optimize import FIRE

    protocol.validate()
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log = log or (lambda _msg: None)
    rng = np.random.default_rng(protocol.seed)
    atoms.calc = calculator
    atoms.wrap()
    started = time.perf_counter()
    recorder = _Recorder(atoms, protocol, folder)
    step, stages_done, stop_reason, message = 0, 0, 'completed', ''
    ranges_total = protocol.total_steps
    _set_velocities(atoms, protocol.resolved_initial_temperature(), rng)
    try:
        if not (protocol.stages and isinstance(protocol.stages[0], Minimize)):
            recorder.record(0)  # else the minimised state is step 0
        for index, stage in enumerate(protocol.stages):
            n_steps = protocol.stage_steps(stage)
            log(f'stage {index} {stage.kind}: {n_steps} steps from step {step}')
            if isinstance(stage, Minimize):
                momenta = atoms.get_momenta()
                FIRE(atoms, logfile=None).run(fmax=stage.ftol, steps=stage.maxiter)
                atoms.set_momenta(momenta)
                recorder.last_thermo = recorder.last_gamma = recorder.last_dump = -1  # positions changed at `step`
                recorder.last_sigma = -1
                recorder.record(step)
            elif isinstance(stage, InstantTemperature):
                _set_velocities(atoms, stage.temperature, rng)
            elif isinstance(stage, (NVT, NPT, Ramp)):
                if isinstance(stage, Ramp):
                    pressure = stage.pressure if stage.ensemble == 'npt' else None
                    t0, t1 = stage.t_start, stage.t_end
                else:
                    pressure = stage.pressure if isinstance(stage, NPT) else None
                    t0 = t1 = stage.temperature
                dynamics = _make_dynamics(atoms, protocol, t0, pressure, rng)
                for i in range(1, n_steps + 1):
                    if t1 != t0:
                        set_target_temperature(dynamics, t0 + (t1 - t0) * i / n_steps)
                    previous = atoms.positions.copy()  # the last finite state is what a crash leaves behind
                    try:
                        dynamics.step()
                    except Exception as exc:  # noqa: BLE001 - e.g. pyace on exploded positions; the run's frames stay
                        exploded = not np.all(np.isfinite(atoms.positions))
                        atoms.positions = previous
                        state = 'non-finite positions' if exploded else 'a calculator error'
                        raise _Halt('error', f'{state} at step {step + 1} ({type(exc).__name__}: {exc}); reduce the '
                                             'timestep or improve the potential.') from None
                    step += 1
                    if not np.all(np.isfinite(atoms.positions)):
                        atoms.positions = previous
                        raise _Halt('error', f'non-finite positions at step {step}; reduce the timestep.')
                    recorder.record(step)
            stages_done = index + 1
    except _Halt as halt:
        stop_reason, message = halt.reason, halt.message
        log(f'stopped at step {step}: {message}')
    # Last step of the run always appears in thermo and dump (as LAMMPS writes thermo at the end of a run).
    if stop_reason != 'error':
        try:
            recorder.record(step, force=True)
        except _Halt as halt:  # already recorded and reported
            if stop_reason == 'completed':
                stop_reason, message = halt.reason, halt.message
    recorder.close()

    final = atoms.copy()
    final.calc = None
    final.wrap()
    from ase.io import write

    write(folder / FILES['final'], final, format='extxyz')
    volume = float(final.get_volume())
    last = recorder.last_line
    results = {
        'engine': 'ase',
        'engine_version': f'ase {ase.__version__}; {type(calculator).__module__}.{type(calculator).__name__}',
        'versions': {**package_versions(), **_calculator_package_version(calculator)},
        'stop_reason': stop_reason,
        'message': message,
        'n_steps': step,
        'n_steps_requested': ranges_total,
        'n_atoms': len(final),
        'n_stages_completed': stages_done,
        'max_gamma': recorder.max_gamma,
        'n_extrapolative_frames': recorder.n_extrapolative if protocol.tracking is not None else None,
        'max_force_deviation': recorder.max_sigma,
        'wall_time_s': time.perf_counter() - started,
        'final_temperature': last.get('temperature'),
        'final_pressure': last.get('pressure'),
        'final_volume': volume,
        'final_density': float(units.density_g_cm3(recorder.mass, volume)),
        'final_potential_energy': last.get('potential_energy'),
        'full_trajectory_file': FILES['dump'] if protocol.dump_interval else None,
        'n_trajectory_frames_full': recorder.n_dump,
    }
    results = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in results.items()}
    (folder / FILES['results']).write_text(json.dumps(results, indent=2))
    log(f'{stop_reason}: {step}/{ranges_total} steps in {results["wall_time_s"]:.1f} s')
    return results


def package_versions(packages: t.Sequence[str] = ('aiida-glassml', 'ase', 'python-ace', 'numpy')) -> dict:
    """Installed version of each package (None when absent): what ran this MD, recorded in ``results``."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in packages:
        try:
            found['pyace' if name == 'python-ace' else name] = version(name)
        except PackageNotFoundError:
            found['pyace' if name == 'python-ace' else name] = None
    return found


def _calculator_package_version(calculator) -> dict:
    """``{distribution: version}`` of the package the calculator comes from (an MLIP's chgnet, sevenn...)."""
    from aiida_glassml.common.mlip import distribution_name, distribution_version

    module = type(calculator).__module__
    if module.split('.')[0] in ('ase', 'pyace', 'aiida_glassml'):
        return {}
    return {distribution_name(module): distribution_version(module)}


#: the script :class:`~aiida_glassml.calculations.ase_md.AseMDCalculation` writes into its folder and runs
RUN_SCRIPT = '''\
"""Written by aiida-glassml's AseMDCalculation: run the MD protocol of input.json in this folder."""
import sys

from aiida_glassml.md.ase_runner import main

sys.exit(main([{input!r}]))
'''


def run_script(input_name: str = FILES['input']) -> str:
    """Text of ``run_md.py``: imports the runner and calls it on ``input_name``."""
    return RUN_SCRIPT.format(input=input_name)


# -- command line ------------------------------------------------------------------------------------------------
def write_input(folder: str | pathlib.Path, atoms, protocol: MDProtocol, calculator: t.Mapping) -> pathlib.Path:
    """Write ``input.json`` and the starting structure into ``folder`` (what the CalcJob does)."""
    from ase.io import write

    folder = pathlib.Path(folder)
    write(folder / FILES['structure'], atoms, format='extxyz')
    path = folder / FILES['input']
    path.write_text(json.dumps({
        'structure': FILES['structure'], 'protocol': protocol.to_dict(), 'calculator': dict(calculator),
    }, indent=2))  # fmt: skip
    return path


def main(argv: t.Sequence[str] | None = None) -> int:
    """``python -m aiida_glassml.md.ase_runner input.json``: run in the directory of ``input.json``."""
    from ase.io import read

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print('usage: python -m aiida_glassml.md.ase_runner input.json', file=sys.stderr)
        return 2
    path = pathlib.Path(argv[0]).resolve()
    folder = path.parent
    try:
        spec = json.loads(path.read_text())
        protocol = MDProtocol.from_dict(spec['protocol'])
        atoms = read(folder / spec['structure'], format='extxyz')
        calculator = load_calculator(spec['calculator'], folder)
        run_protocol(atoms, calculator, protocol, folder, log=lambda msg: print(msg, flush=True))
    except Exception as exc:  # noqa: BLE001 - reported to the parser through results.json, then re-raised as rc 1
        traceback.print_exc()
        (folder / FILES['results']).write_text(json.dumps({
            'engine': 'ase', 'stop_reason': 'error', 'message': f'{type(exc).__name__}: {exc}',
            'versions': package_versions(),
        }))  # fmt: skip
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())


__all__ = ['FILES', 'THERMO_COLUMNS', 'AseRunnerError', 'load_calculator', 'package_versions', 'resolve_calculator_class',
           'run_protocol', 'run_script', 'set_target_temperature', 'write_input', 'main']  # fmt: skip

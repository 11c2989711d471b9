"""Elastic constants of a glass from strain–stress runs at 0 K: the strain loop (ASE, or a rendered LAMMPS input),
linear regression of stress on strain, C11/C12/C44 averaged under isotropy and the isotropic moduli.

The study's protocol: from the minimised reference, ``n_steps`` stepwise elongations and (from the reference again)
compressions of ``strain_step`` in each of xx, yy, zz and the shears yz, xz, xy, minimising atom positions at fixed
cell after every step and reading the stress. A DFT engine takes one ±0.5 % step (``n_steps=1``) as single points of
homogeneously strained cells (:func:`strain_states`, :func:`single_point_table`): clamped-ion constants.

Conventions: Voigt order xx, yy, zz, yz, xz, xy; shears are engineering strains γ of a simple shear
(x' = x + γ y for xy, the LAMMPS tilt ``xy``), so σ_xy = C66 γ. Stress is positive in tension (stress = −pressure):
ASE's stress is already that (eV/Å³); LAMMPS ``pxx`` is a pressure in bar. Everything out of this module is in GPa.

Pure numpy/ASE; no AiiDA imports.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import sys
import time
import traceback
import typing as t

import numpy as np

from aiida_glassml.common import units

#: strain components in Voigt order
COMPONENTS = ('xx', 'yy', 'zz', 'yz', 'xz', 'xy')
NORMAL = ('xx', 'yy', 'zz')
SHEAR = ('yz', 'xz', 'xy')
#: (row, column) of the deformation-gradient entry each component sets (F = I + strain at that entry)
_F_INDEX = {'xx': (0, 0), 'yy': (1, 1), 'zz': (2, 2), 'yz': (1, 2), 'xz': (0, 2), 'xy': (0, 1)}
#: largest total strain (strain_step × n_steps) accepted: far beyond it a glass is not linear elastic
MAX_TOTAL_STRAIN = 0.05
OPTIMIZERS = ('fire', 'lbfgs')
#: the reference point's component index in the stress–strain table
REFERENCE = -1
#: the reference minimisation starts from an MD snapshot or a packing, far from a minimum: it gets this × maxiter
REFERENCE_MAXITER_FACTOR = 10

FILES = {
    'input': 'input.json',
    'script': 'run_elastic.py',
    'structure': 'structure.extxyz',
    'table': 'stress_strain.dat',
    'reference': 'reference.extxyz',
    'results': 'results.json',
    # LAMMPS
    'lammps_input': 'input.in',
    'lammps_data': 'structure.data',
    'lammps_log': 'log.lammps',
    'lammps_stdout': 'lammps.out',
    'lammps_reference': 'reference.dump',
}
#: columns of the stress–strain table (stresses as the engine reports them; see :func:`stress_gpa`)
TABLE_COLUMNS = ('component', 'strain', 's_xx', 's_yy', 's_zz', 's_yz', 's_xz', 's_xy', 'energy', 'fmax', 'iterations')
#: printed by the LAMMPS input at the end, so the parser can tell a finished loop from a crashed one
MARK_END = 'GLASSML_ELASTIC_END'


class ElasticInputError(ValueError):
    """A strain protocol that cannot run as written; the message names the problem and the fix."""


@dataclasses.dataclass
class StrainProtocol:
    """The strain loop. ``strain_step`` (dimensionless; 1e-4 is 0.01 %) × ``n_steps`` each way per component;
    minimisation to ``ftol`` (eV/Å, largest force on any atom) in at most ``maxiter`` iterations after every step
    (the reference: :data:`REFERENCE_MAXITER_FACTOR` × ``maxiter``)."""

    strain_step: float = 1.0e-4
    n_steps: int = 20
    components: tuple = COMPONENTS
    ftol: float = 1.0e-4
    maxiter: int = 2000
    optimizer: str = 'fire'  # ASE only; LAMMPS minimises with cg
    nonlinearity_tolerance: float = 0.1

    def validate(self) -> StrainProtocol:
        step = self.strain_step
        if not _is_number(step) or step <= 0:
            raise ElasticInputError(f'`strain_step` must be a positive strain (1e-4 is 0.01 %), got {step!r}; '
                                    'compressions are taken automatically.')
        if not isinstance(self.n_steps, int) or isinstance(self.n_steps, bool) or self.n_steps < 1:
            raise ElasticInputError(f'`n_steps` must be a positive integer (steps each way), got {self.n_steps!r}.')
        if step * self.n_steps > MAX_TOTAL_STRAIN:
            raise ElasticInputError(
                f'the largest strain is strain_step × n_steps = {step * self.n_steps:.4g}, beyond {MAX_TOTAL_STRAIN} '
                'where a glass is not linear elastic; use a strain of order 1e-4 per step (the study: 20 × 1e-4).'
            )
        components = tuple(self.components)
        unknown = sorted(set(components) - set(COMPONENTS))
        if unknown or len(set(components)) != len(components) or not components:
            raise ElasticInputError(f'`components` must be distinct names from {COMPONENTS}, got {list(components)}.')
        if not set(components) & set(NORMAL) or not set(components) & set(SHEAR):
            raise ElasticInputError(f'`components` {list(components)} need at least one normal ({NORMAL}) and one '
                                    f'shear ({SHEAR}) strain to give C11, C12 and C44.')
        if not _is_number(self.ftol) or self.ftol <= 0:
            raise ElasticInputError(f'`ftol` must be a positive force in eV/Å, got {self.ftol!r}.')
        if not isinstance(self.maxiter, int) or isinstance(self.maxiter, bool) or self.maxiter < 1:
            raise ElasticInputError(f'`maxiter` must be a positive integer, got {self.maxiter!r}.')
        if self.optimizer not in OPTIMIZERS:
            raise ElasticInputError(f'unknown `optimizer` {self.optimizer!r}; use one of {OPTIMIZERS}.')
        if not _is_number(self.nonlinearity_tolerance) or self.nonlinearity_tolerance <= 0:
            raise ElasticInputError(f'`nonlinearity_tolerance` must be a positive fraction, got '
                                    f'{self.nonlinearity_tolerance!r}.')
        return self

    @property
    def max_strain(self) -> float:
        return self.strain_step * self.n_steps

    def points(self) -> list[tuple[str, float]]:
        """``(component, strain)`` of every strained state in run order; each direction starts from the reference."""
        return [(c, sign * k * self.strain_step) for c in self.components for sign in (1, -1)
                for k in range(1, self.n_steps + 1)]  # fmt: skip

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data['components'] = list(self.components)
        return data

    @classmethod
    def from_dict(cls, data: t.Mapping, validate: bool = True) -> StrainProtocol:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ElasticInputError(f'unknown strain keys {unknown}; known keys are {sorted(known)}.')
        data = dict(data)
        if 'components' in data:
            data['components'] = tuple(data['components'])
        protocol = cls(**data)
        return protocol.validate() if validate else protocol


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- deformations --------------------------------------------------------------------------------------------------
def deformation_gradient(component: str, strain: float) -> np.ndarray:
    """F = I + strain at the component's entry: uniaxial for xx/yy/zz, simple shear for yz/xz/xy (upper
    triangular, so a LAMMPS box stays a LAMMPS box)."""
    matrix = np.eye(3)
    matrix[_F_INDEX[component]] += strain
    return matrix


def strained_cell(cell: np.ndarray, component: str, strain: float) -> np.ndarray:
    """Cell (rows are vectors) deformed by F: each vector a → F a."""
    return np.asarray(cell, dtype=float) @ deformation_gradient(component, strain).T


def lammps_bounds(cell: np.ndarray) -> tuple[float, ...]:
    """``(lx, ly, lz, xy, xz, yz)`` of a lower-triangular LAMMPS cell (rows a=(lx,0,0), b=(xy,ly,0), c=(xz,yz,lz))."""
    cell = np.asarray(cell, dtype=float)
    return tuple(float(v) for v in (cell[0, 0], cell[1, 1], cell[2, 2], cell[1, 0], cell[2, 0], cell[2, 1]))


def stress_gpa(stress: np.ndarray, engine: str) -> np.ndarray:
    """Stresses (Voigt, tension positive) in GPa from an engine's table: ASE eV/Å³ stress, LAMMPS bar pressure."""
    stress = np.asarray(stress, dtype=float)
    if engine == 'ase':
        return stress * units.GPA_PER_EV_PER_A3
    if engine == 'lammps':
        return -stress / units.BAR_PER_GPA
    raise ElasticInputError(f"unknown engine {engine!r}; use 'ase' or 'lammps'.")


# -- the strain loop in ASE -----------------------------------------------------------------------------------------
def _minimise(atoms, protocol: StrainProtocol, maxiter: int | None = None) -> tuple[int, bool]:
    from ase.optimize import FIRE, LBFGS

    optimizer = {'fire': FIRE, 'lbfgs': LBFGS}[protocol.optimizer](atoms, logfile=None)
    converged = optimizer.run(fmax=protocol.ftol, steps=maxiter or protocol.maxiter)
    return int(optimizer.nsteps), bool(converged)


def run_strain_loop(atoms, calculator, protocol: StrainProtocol, folder: str | pathlib.Path = '.',
                    log: t.Callable[[str], None] | None = print) -> dict:  # fmt: skip
    """Minimise ``atoms`` at fixed cell (the reference), then run the strain loop; write the stress–strain table,
    the reference structure and ``results.json`` into ``folder`` and return the results."""
    import ase
    from ase.io import write

    protocol.validate()
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log = log or (lambda _msg: None)
    started = time.perf_counter()
    atoms.calc = calculator
    atoms.wrap()
    n_unconverged = 0

    with open(folder / FILES['table'], 'w', encoding='utf-8') as table:
        table.write('# ' + ' '.join(TABLE_COLUMNS) + '  (stress: ASE, eV/A^3, tension positive)\n')

        def record(index: int, strain: float, iterations: int, converged: bool):
            nonlocal n_unconverged
            n_unconverged += not converged
            stress = atoms.get_stress(voigt=True)
            fmax = float(np.sqrt((atoms.get_forces() ** 2).sum(axis=1)).max())
            values = [index, strain, *stress, atoms.get_potential_energy(), fmax, iterations]
            table.write(' '.join(repr(float(v)) if i not in (0, 10) else str(int(v)) for i, v in enumerate(values))
                        + '\n')  # fmt: skip
            table.flush()

        iterations, converged = _minimise(atoms, protocol, REFERENCE_MAXITER_FACTOR * protocol.maxiter)
        record(REFERENCE, 0.0, iterations, converged)
        reference = atoms.copy()
        reference_cell = np.array(atoms.cell)
        write(folder / FILES['reference'], _bare(reference), format='extxyz')
        log(f'reference minimised in {iterations} iterations; {len(protocol.points())} strained states to go')
        previous = None
        for component, strain in protocol.points():
            if previous is None or previous[0] != component or np.sign(previous[1]) != np.sign(strain):
                atoms.set_cell(reference_cell, scale_atoms=False)
                atoms.positions = reference.positions
            atoms.set_cell(strained_cell(reference_cell, component, strain), scale_atoms=True)
            iterations, converged = _minimise(atoms, protocol)
            record(COMPONENTS.index(component), strain, iterations, converged)
            previous = (component, strain)

    results = {
        'engine': 'ase',
        'engine_version': f'ase {ase.__version__}; {type(calculator).__module__}.{type(calculator).__name__}',
        'n_atoms': len(atoms),
        'n_points': len(protocol.points()) + 1,
        'n_unconverged': n_unconverged,
        'wall_time_s': time.perf_counter() - started,
        'completed': True,
    }
    (folder / FILES['results']).write_text(json.dumps(results, indent=2))
    log(f'{results["n_points"]} states in {results["wall_time_s"]:.1f} s; {n_unconverged} not converged to ftol')
    return results


def _bare(atoms):
    atoms = atoms.copy()
    atoms.calc = None
    return atoms


RUN_SCRIPT = '''\
"""Written by aiida-glassml's ElasticAseCalculation: run the strain loop of input.json in this folder."""
import sys

from aiida_glassml.analysis.elastic import main

sys.exit(main([{input!r}]))
'''


def run_script(input_name: str = FILES['input']) -> str:
    return RUN_SCRIPT.format(input=input_name)


def write_input(folder: str | pathlib.Path, atoms, protocol: StrainProtocol, calculator: t.Mapping) -> pathlib.Path:
    """Write ``input.json`` and the starting structure into ``folder`` (what the CalcJob does)."""
    from ase.io import write

    folder = pathlib.Path(folder)
    write(folder / FILES['structure'], atoms, format='extxyz')
    path = folder / FILES['input']
    path.write_text(json.dumps({'structure': FILES['structure'], 'strain': protocol.to_dict(),
                                'calculator': dict(calculator)}, indent=2))  # fmt: skip
    return path


def main(argv: t.Sequence[str] | None = None) -> int:
    """``python -m aiida_glassml.analysis.elastic input.json``: run in the directory of ``input.json``."""
    from ase.io import read

    from aiida_glassml.md.ase_runner import load_calculator

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print('usage: python -m aiida_glassml.analysis.elastic input.json', file=sys.stderr)
        return 2
    path = pathlib.Path(argv[0]).resolve()
    folder = path.parent
    try:
        spec = json.loads(path.read_text())
        protocol = StrainProtocol.from_dict(spec['strain'])
        atoms = read(folder / spec['structure'], format='extxyz')
        run_strain_loop(atoms, load_calculator(spec['calculator'], folder), protocol, folder,
                        log=lambda msg: print(msg, flush=True))
    except Exception as exc:  # noqa: BLE001 - reported to the parser through results.json, and rc 1
        traceback.print_exc()
        (folder / FILES['results']).write_text(json.dumps({'engine': 'ase', 'completed': False,
                                                           'message': f'{type(exc).__name__}: {exc}'}))  # fmt: skip
        return 1
    return 0


# -- the strain loop in LAMMPS --------------------------------------------------------------------------------------
def render_lammps_input(protocol: StrainProtocol, block, type_symbols: t.Sequence[str], cell: np.ndarray) -> str:
    """LAMMPS input of the strain loop. ``block`` is a :class:`aiida_glassml.md.lammps.PotentialBlock`; ``cell`` the
    reference cell in the LAMMPS frame (as the data file writes it). Every state's box is given in absolute numbers
    (``change_box ... final ... remap``); each direction restarts from the minimised reference (``read_dump``).
    ``min_modify norm max`` makes ``ftol`` the largest force on any atom, as ASE's ``fmax``."""
    protocol.validate()
    elements = ' '.join(type_symbols)
    maxeval = 10 * protocol.maxiter
    reference_maxiter = REFERENCE_MAXITER_FACTOR * protocol.maxiter
    stress = ' '.join(f'$({key}:%.12g)' for key in ('pxx', 'pyy', 'pzz', 'pyz', 'pxz', 'pxy'))

    def record(index: int, strain: float) -> list[str]:
        return [f'print "{index} {strain!r} {stress} $(pe:%.12g) $(fmax:%.6g) $(v_iterations)" append '
                f'{FILES["table"]} screen no']

    w = [f'# aiida-glassml strain loop: {len(protocol.points())} strained states, components '
         f'{" ".join(protocol.components)}, step {protocol.strain_step:g} x {protocol.n_steps} each way',
         'units metal', f'atom_style {block.atom_style}', 'boundary p p p', f'read_data {FILES["lammps_data"]}',
         'change_box all triclinic  # shears tilt the box; PPPM must be defined after this',
         *block.charge_lines, '', *block.lines, '',
         'neighbor 2.0 bin', 'neigh_modify every 1 delay 0 check yes',
         'thermo_style custom step pe press pxx pyy pzz pyz pxz pxy fmax fnorm',
         'thermo_modify norm no flush yes', 'thermo 1000',
         'pair_modify shift yes  # no energy jumps at the cutoff for the line search; forces and stress unchanged',
         'variable iterations equal 0',
         f'print "# {" ".join(TABLE_COLUMNS)}  (stress: LAMMPS pressure, bar)" file {FILES["table"]} screen no',
         '', '# reference: minimise at fixed cell, CG then FIRE where CG\'s line search gives up',
         'min_style cg', 'min_modify norm max',
         f'minimize 0.0 {protocol.ftol!r} {reference_maxiter} {10 * reference_maxiter}',
         'min_style fire', 'min_modify norm max',
         f'minimize 0.0 {protocol.ftol!r} {reference_maxiter} {10 * reference_maxiter}',
         'variable iterations equal $(step)',
         *record(REFERENCE, 0.0),
         'reset_timestep 0',
         f'write_dump all custom {FILES["lammps_reference"]} id type element x y z ix iy iz modify sort id '
         f'element {elements} format float %.17g']  # fmt: skip
    previous = None
    for component, strain in protocol.points():
        w.append('')
        if previous is None or previous[0] != component or np.sign(previous[1]) != np.sign(strain):
            w.append(f'# {component}, {"elongation" if strain > 0 else "compression"} from the reference')
            w.append(f'read_dump {FILES["lammps_reference"]} 0 x y z ix iy iz box yes replace yes')
        lx, ly, lz, xy, xz, yz = lammps_bounds(strained_cell(cell, component, strain))
        w += [f'change_box all x final 0.0 {lx!r} y final 0.0 {ly!r} z final 0.0 {lz!r} xy final {xy!r} '
              f'xz final {xz!r} yz final {yz!r} remap units box',
              'reset_timestep 0',
              f'minimize 0.0 {protocol.ftol!r} {protocol.maxiter} {maxeval}',
              'variable iterations equal $(step)',
              *record(COMPONENTS.index(component), strain)]  # fmt: skip
        previous = (component, strain)
    w += ['', f'print "{MARK_END}"']
    return '\n'.join(w) + '\n'


# -- tables ---------------------------------------------------------------------------------------------------------
def read_table(text: str, engine: str) -> dict[str, np.ndarray]:
    """The stress–strain table as arrays: ``component`` (index into :data:`COMPONENTS`, −1 the reference),
    ``strain``, ``stress`` (N × 6, GPa, tension positive), ``energy`` (eV), ``fmax`` (eV/Å), ``iterations``."""
    import io

    table = np.loadtxt(io.StringIO(text), ndmin=2)
    if table.size == 0:
        raise ElasticInputError('the stress–strain table is empty: the reference minimisation did not finish.')
    return {
        'component': table[:, 0].astype(np.int64),
        'strain': table[:, 1],
        'stress': stress_gpa(table[:, 2:8], engine),
        'energy': table[:, 8],
        'fmax': table[:, 9],
        'iterations': table[:, 10].astype(np.int64),
    }


# -- single points (DFT) ----------------------------------------------------------------------------------------------
def strain_states(protocol: StrainProtocol) -> list[tuple[str, int, float]]:
    """``(label, component index, strain)`` of the reference and every strained state, for single points: labels
    ``reference``, ``xx_plus_1``, ``xy_minus_1``... (a link label each)."""
    states = [('reference', REFERENCE, 0.0)]
    for component, strain in protocol.points():
        step = round(abs(strain) / protocol.strain_step)
        states.append((f'{component}_{"plus" if strain > 0 else "minus"}_{step}', COMPONENTS.index(component), strain))
    return states


def strained_atoms(atoms, component: str, strain: float):
    """A copy of ``atoms`` homogeneously strained (positions follow the cell): a clamped-ion state."""
    strained = atoms.copy()
    strained.calc = None
    strained.set_cell(strained_cell(np.array(atoms.cell), component, strain), scale_atoms=True)
    return strained


def single_point_table(protocol: StrainProtocol, reference_cell: np.ndarray, cells: np.ndarray, stresses: np.ndarray,
                       energies: np.ndarray, fmax: np.ndarray) -> tuple[dict[str, np.ndarray], list[str]]:
    """The stress–strain table (:func:`read_table`'s layout, ``iterations`` 0) from single points of the states of
    :func:`strain_states`, and the labels of the states no frame matched. Frames (cells F × 3 × 3, stresses F × 6 in
    ASE's eV/Å³, tension positive) are matched to states by their cell, so their order does not matter."""
    states = strain_states(protocol)
    expected = np.array([strained_cell(reference_cell, COMPONENTS[c], e) if c != REFERENCE else reference_cell
                         for _, c, e in states])  # fmt: skip
    # well below the change of a cell entry by one strain step
    tolerance = 0.25 * protocol.strain_step * float(np.linalg.norm(reference_cell, axis=1).min())
    found: dict[int, int] = {}
    for frame, cell in enumerate(np.asarray(cells, dtype=float).reshape(-1, 3, 3)):
        distance = np.abs(expected - cell).max(axis=(1, 2))
        state = int(np.argmin(distance))
        if distance[state] < tolerance and state not in found:
            found[state] = frame
    rows = sorted(found)
    frames = [found[s] for s in rows]
    table = {
        'component': np.array([states[s][1] for s in rows], dtype=np.int64),
        'strain': np.array([states[s][2] for s in rows], dtype=float),
        'stress': stress_gpa(np.asarray(stresses, dtype=float).reshape(-1, 6)[frames], 'ase').reshape(-1, 6),
        'energy': np.asarray(energies, dtype=float)[frames],
        'fmax': np.asarray(fmax, dtype=float)[frames],
        'iterations': np.zeros(len(rows), dtype=np.int64),
    }
    return table, [label for index, (label, _, _) in enumerate(states) if index not in found]


def table_problem(table: t.Mapping[str, np.ndarray], protocol: StrainProtocol) -> str | None:
    """Why a (partial) table cannot give C11, C12 and C44 (a strained component with fewer than two points, or no
    stress), or None."""
    if not len(table['strain']) or not np.all(np.isfinite(table['stress'])):
        return 'no stress for some states' if len(table['strain']) else 'no state was labelled'
    reference = int((table['component'] == REFERENCE).sum())
    short = [c for c in protocol.components if reference + (table['component'] == COMPONENTS.index(c)).sum() < 2]
    return f'fewer than two points for {short}' if short else None


# -- regression -------------------------------------------------------------------------------------------------------
def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """``(slope, intercept, r2)`` of a least-squares line; R² is 1 for noiseless data and NaN for constant y."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = ((y - (slope * x + intercept)) ** 2).sum()
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - residual / total if total > 0 else float('nan')
    return float(slope), float(intercept), float(r2)


def nonlinearity(strain: np.ndarray, stress: np.ndarray) -> dict:
    """How far a stress–strain response is from a line, as fractions of the slope.

    ``halves``: relative difference of the slopes fitted to the small-strain half (|ε| ≤ ε_max/2) and the large-strain
    half (|ε| ≥ ε_max/2) of the points (None with fewer than 2 distinct strains in a half); ``curvature``: the relative
    change of the tangent modulus at ε_max from a quadratic fit, |2 c ε_max / b|. ``value``: the larger of the two.
    """
    strain, stress = np.asarray(strain, dtype=float), np.asarray(stress, dtype=float)
    eps_max = np.abs(strain).max()
    small = np.abs(strain) <= eps_max / 2 + 1e-15
    large = np.abs(strain) >= eps_max / 2 - 1e-15
    halves = None
    if len(np.unique(strain[small])) >= 2 and len(np.unique(strain[large])) >= 2:
        slope_small = linear_fit(strain[small], stress[small])[0]
        slope_large = linear_fit(strain[large], stress[large])[0]
        halves = abs(slope_large - slope_small) / abs(slope_small) if slope_small else float('inf')
    curvature = None
    if len(np.unique(strain)) >= 3:
        c, b, _a = np.polyfit(strain, stress, 2)
        curvature = abs(2 * c * eps_max / b) if b else float('inf')
    known = [v for v in (halves, curvature) if v is not None]
    return {'halves': halves, 'curvature': curvature, 'value': max(known) if known else None}


def fit_elastic(table: t.Mapping[str, np.ndarray]) -> dict:
    """Elastic response of one run from its table (:func:`read_table`).

    Returns ``matrix`` (6 × 6 GPa, C[i, j] = dσ_i/dε_j; NaN in the columns of components not strained), and per
    strained component its primary modulus (C11 for xx, C66 for xy, ...), slopes/intercepts/R² of all six stresses,
    and :func:`nonlinearity` of the primary response. The reference point belongs to every component's series.
    """
    component, strain, stress = table['component'], table['strain'], table['stress']
    reference = component == REFERENCE
    matrix = np.full((6, 6), np.nan)
    per_component = {}
    for j, name in enumerate(COMPONENTS):
        rows = (component == j) | reference
        if not np.any(component == j):
            continue
        x, stresses = strain[rows], stress[rows]
        fits = [linear_fit(x, stresses[:, i]) for i in range(6)]
        matrix[:, j] = [f[0] for f in fits]
        per_component[name] = {
            'modulus': fits[j][0], 'intercept': fits[j][1], 'r2': fits[j][2],
            'slopes': [f[0] for f in fits], 'intercepts': [f[1] for f in fits],
            'nonlinearity': nonlinearity(x, stresses[:, j]),
            'n_points': int(rows.sum()),
        }
    return {'matrix': matrix, 'components': per_component}


def isotropic_constants(matrix: np.ndarray) -> dict:
    """C11, C12, C44 (GPa) averaged under isotropy over what was strained: C11 over C11/C22/C33, C12 over the
    off-diagonal normal block, C44 over C44/C55/C66; then the Voigt-style moduli of :func:`moduli`."""
    matrix = np.asarray(matrix, dtype=float)
    normal = [j for j in range(3) if np.isfinite(matrix[j, j])]
    shear = [j for j in range(3, 6) if np.isfinite(matrix[j, j])]
    if not normal or not shear:
        raise ElasticInputError('C11, C12 and C44 need at least one normal and one shear strain.')
    c11 = float(np.mean([matrix[j, j] for j in normal]))
    c12 = float(np.mean([matrix[i, j] for j in normal for i in range(3) if i != j]))
    c44 = float(np.mean([matrix[j, j] for j in shear]))
    return {'C11': c11, 'C12': c12, 'C44': c44, **moduli(c11, c12, c44)}


def moduli(c11: float, c12: float, c44: float) -> dict:
    """Voigt-style isotropic moduli (GPa) of C11, C12, C44: K = (C11 + 2 C12)/3, G = (C11 − C12 + 3 C44)/5,
    E = 9KG/(3K + G), ν = (3K − 2G)/(2(3K + G)); ``anisotropy`` 2 C44/(C11 − C12) is 1 for an isotropic solid."""
    bulk = (c11 + 2 * c12) / 3
    shear = (c11 - c12 + 3 * c44) / 5
    young = 9 * bulk * shear / (3 * bulk + shear)
    poisson = (3 * bulk - 2 * shear) / (2 * (3 * bulk + shear))
    anisotropy = 2 * c44 / (c11 - c12) if c11 != c12 else float('inf')
    return {'K': float(bulk), 'G': float(shear), 'E': float(young), 'nu': float(poisson),
            'anisotropy': float(anisotropy)}  # fmt: skip


MODULI = ('C11', 'C12', 'C44', 'E', 'G', 'K', 'nu')


def analyse_replicas(tables: t.Mapping[str, t.Mapping[str, np.ndarray]], tolerance: float = 0.1) -> dict:
    """Moduli of every replica and their mean and spread (sample standard deviation; None for one replica), with
    the R² and non-linearity of every component and ``warnings`` where the non-linearity exceeds ``tolerance``."""
    per_replica, warnings = {}, []
    for label, table in tables.items():
        fit = fit_elastic(table)
        constants = isotropic_constants(fit['matrix'])
        components = {name: {'modulus': c['modulus'], 'r2': c['r2'], 'nonlinearity': c['nonlinearity']['value'],
                             'nonlinearity_halves': c['nonlinearity']['halves'],
                             'nonlinearity_curvature': c['nonlinearity']['curvature'],
                             'residual_stress': c['intercept']}
                      for name, c in fit['components'].items()}  # fmt: skip
        per_replica[label] = {**constants, 'matrix': _clean(fit['matrix'].tolist()), 'components': components}
        for name, c in components.items():
            if c['nonlinearity'] is not None and c['nonlinearity'] > tolerance:
                warnings.append(f'{label} {name}: the stress-strain response is not linear (non-linearity '
                                f'{c["nonlinearity"]:.3f} > {tolerance}); lower strain_step or n_steps.')
    summary = {}
    for name in (*MODULI, 'anisotropy'):
        values = np.array([per_replica[label][name] for label in per_replica])
        summary[name] = {'mean': float(values.mean()), 'std': float(values.std(ddof=1)) if len(values) > 1 else None,
                         'values': values.tolist()}  # fmt: skip
    r2 = [c['r2'] for r in per_replica.values() for c in r['components'].values()]
    worst = [c['nonlinearity'] for r in per_replica.values() for c in r['components'].values()
             if c['nonlinearity'] is not None]  # fmt: skip
    return _clean({'units': 'GPa (nu and anisotropy dimensionless)', 'replicas': list(per_replica), **summary,
                   'per_replica': per_replica, 'min_r2': float(np.nanmin(r2)) if r2 else None,
                   'max_nonlinearity': max(worst) if worst else None, 'nonlinearity_tolerance': tolerance,
                   'warnings': warnings})  # fmt: skip


def _clean(value):
    """JSON-safe: NaN/inf floats become None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


# -- figure ------------------------------------------------------------------------------------------------------------
def stress_strain_png(tables: t.Mapping[str, t.Mapping[str, np.ndarray]]) -> bytes:
    """One panel per strained component: the primary stress against strain (%) of every replica with its fit line."""
    from aiida_glassml.common.plotting import png_bytes, pyplot

    plt = pyplot()
    present = [j for j in range(6) if any(np.any(t_['component'] == j) for t_ in tables.values())]
    ncols = min(3, len(present))
    nrows = math.ceil(len(present) / ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.3 * nrows), squeeze=False)
    for panel, j in zip(axes.flat, present):
        name = COMPONENTS[j]
        for colour, (label, table) in enumerate(tables.items()):
            rows = (table['component'] == j) | (table['component'] == REFERENCE)
            x, y = table['strain'][rows], table['stress'][rows, j]
            order = np.argsort(x)
            slope, intercept, _ = linear_fit(x, y)
            panel.plot(100 * x[order], y[order], 'o', ms=3, color=f'C{colour}', label=f'{label}: {slope:.1f} GPa')
            panel.plot(100 * x[order], slope * x[order] + intercept, '-', lw=1, color=f'C{colour}')
        panel.set_xlabel(f'strain {"ε" if name in NORMAL else "γ"}$_{{{name}}}$ (%)')
        panel.set_ylabel(f'σ$_{{{name}}}$ (GPa)')
        panel.legend(fontsize=7)
    for panel in list(axes.flat)[len(present):]:
        panel.set_visible(False)
    return png_bytes(figure)


if __name__ == '__main__':
    sys.exit(main())


__all__ = ['COMPONENTS', 'FILES', 'MODULI', 'ElasticInputError', 'StrainProtocol', 'analyse_replicas',
           'deformation_gradient', 'fit_elastic', 'isotropic_constants', 'linear_fit', 'main', 'moduli',
           'nonlinearity', 'read_table', 'render_lammps_input', 'run_strain_loop', 'single_point_table',
           'strain_states', 'strained_atoms', 'strained_cell', 'stress_gpa', 'stress_strain_png', 'table_problem',
           'write_input']  # fmt: skip

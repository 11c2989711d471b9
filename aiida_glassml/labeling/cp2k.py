"""CP2K (Quickstep) labelling: input dictionaries for aiida-cp2k and frame extraction from CP2K's output files.

Basis sets (MOLOPT) and GTH pseudopotentials come from CP2K's data directory (Debian's cp2k-data:
``/usr/share/cp2k``). Element coverage is checked against those files before anything is submitted.
Units of CP2K's files: positions Å, energies Hartree, forces Hartree/Bohr, stress GPa (opposite sign to ASE).
"""

from __future__ import annotations

import functools
import pathlib
import re
import typing as t

import numpy as np

from aiida_glassml.common.units import GPA_TO_EV_PER_A3, HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, HARTREE_TO_EV

from .errors import LabelingInputError

DEFAULT_DATA_DIR = '/usr/share/cp2k'
# Elements whose atoms start with a moment in spin-polarised runs (μB); others start at 0.
DEFAULT_INITIAL_MAGNETIZATION = {'Fe': 4, 'V': 2, 'Mn': 5, 'Co': 3, 'Ni': 2, 'Cr': 3, 'Ti': 1}
# Project name set by aiida-cp2k: output files are aiida-pos-1.xyz, aiida-frc-1.xyz, aiida-1.cell.
PROJECT = 'aiida'
POS_FILE, FRC_FILE, CELL_FILE = f'{PROJECT}-pos-1.xyz', f'{PROJECT}-frc-1.xyz', f'{PROJECT}-1.cell'
OUTPUT_FILE = 'aiida.out'
#: the valence electron density of a single point, written with ``E_DENSITY_CUBE`` (total density also in UKS runs,
#: which write the spin density to a file of its own)
DENSITY_CUBE_FILE = f'{PROJECT}-ELECTRON_DENSITY-1_0.cube'
# AIMD thermostats (`aimd.thermostat`): CSVR (the NaFePO4 AIMD preset) and a Nosé–Hoover chain (the Na-V-P-O thesis).
THERMOSTATS = ('csvr', 'nose_hoover')
NOSE_HOOVER_CHAIN = 3  # CP2K's default chain length
DEFAULT_TRUNCATION_RADIUS = 4.0  # Å, PBE0-TC-LRC


# ------------------------------------------------------------------------------------------------ data files
@functools.lru_cache(maxsize=16)
def _read_names(path: str) -> dict[str, list[str]]:
    """Map element -> every name and alias defined for it in a CP2K BASIS/POTENTIAL file."""
    names: dict[str, list[str]] = {}
    with open(path, encoding='utf-8', errors='replace') as handle:
        for line in handle:
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            parts = line.split()
            # Header lines start with an element symbol followed by names (no numbers).
            if parts[0].isalpha() and len(parts) >= 2 and not re.match(r'^[-+\d.]', parts[1]):
                names.setdefault(parts[0], []).extend(parts[1:])
    return names


def select_basis_and_potential(
    elements: t.Iterable[str], basis: str = 'DZVP', xc: str = 'PBE', data_dir: str = DEFAULT_DATA_DIR,
    basis_file: str = 'BASIS_MOLOPT', potential_file: str = 'GTH_POTENTIALS',
) -> dict[str, tuple[str, str]]:  # fmt: skip
    """Per element, a MOLOPT basis of size ``basis`` (``SZV``, ``DZVP``, ``TZVP``...) and the GTH pseudopotential for
    ``xc`` with the same valence. The full-range MOLOPT set is preferred, the short-range (SR) one used where it is the
    only one (Na, Fe, V in cp2k-data). Raises :class:`LabelingInputError` naming every element without a pair."""
    base = pathlib.Path(data_dir)
    for name in (basis_file, potential_file):
        if not (base / name).is_file():
            raise LabelingInputError(
                f'CP2K data file {base / name} not found; install cp2k-data (`apt-get install cp2k-data`) or set '
                '`cp2k.data_dir` to the directory holding BASIS_MOLOPT and GTH_POTENTIALS.'
            )
    basis_names = _read_names(str(base / basis_file))
    potential_names = _read_names(str(base / potential_file))
    chosen, missing = {}, []
    for element in sorted(set(elements)):
        potentials = [p for p in potential_names.get(element, []) if re.fullmatch(rf'GTH-{xc}-q\d+', p)]
        found = None
        for kind in ('MOLOPT', 'MOLOPT-SR'):
            for pot in potentials:
                valence = pot.rsplit('-', 1)[1]
                candidate = f'{basis}-{kind}-GTH-{valence}'
                if candidate in basis_names.get(element, []):
                    found = (candidate, pot)
                    break
            if found:
                break
        if found:
            chosen[element] = found
        else:
            missing.append(element)
    if missing:
        raise LabelingInputError(
            f'no {basis}-MOLOPT basis set with a matching GTH-{xc} pseudopotential for {", ".join(missing)} in '
            f'{base / basis_file} and {base / potential_file}; choose another basis size (`cp2k.basis`: SZV, DZVP, '
            'TZVP) or functional, or add the element to those files.'
        )
    return chosen


def count_valence_electrons(symbols: t.Sequence[str], kinds: dict[str, tuple[str, str]]) -> int:
    return sum(int(kinds[s][1].rsplit('-q', 1)[1]) for s in symbols)


def valence_charges(symbols: t.Iterable[str], settings: dict) -> dict[str, int]:
    """Z_val per element: the q of the GTH pseudopotential the ``cp2k`` settings select (Na 9 for GTH-PBE-q9), what
    a Bader population of CP2K's (valence) density is compared with."""
    kinds = select_basis_and_potential(
        symbols, settings.get('basis', 'DZVP'), settings.get('xc', 'PBE'), settings.get('data_dir', DEFAULT_DATA_DIR),
        settings.get('basis_file', 'BASIS_MOLOPT'), settings.get('potential_file', 'GTH_POTENTIALS'),
    )  # fmt: skip
    return {element: int(potential.rsplit('-q', 1)[1]) for element, (_, potential) in kinds.items()}


def with_density_cube(parameters: dict, stride: int = 1) -> dict:
    """Copy of ``parameters`` printing the electron density of the last SCF as a cube (:data:`DENSITY_CUBE_FILE`),
    every ``stride``-th grid point along each axis (1: the full grid; a stride that does not divide the grid makes a
    cube whose cell is off)."""
    import copy

    if int(stride) < 1:
        raise LabelingInputError(f'`bader.stride` must be a positive integer, got {stride}; 1 prints every point.')
    parameters = copy.deepcopy(parameters)
    dft_print = parameters['FORCE_EVAL']['DFT'].setdefault('PRINT', {})
    dft_print['E_DENSITY_CUBE'] = {'STRIDE': ' '.join([str(int(stride))] * 3)}
    return parameters


# ------------------------------------------------------------------------------------------------ input
def build_cp2k_parameters(
    symbols: t.Sequence[str], settings: dict, mode: str, md: dict | None = None, kind_names: t.Sequence[str] | None = None
) -> dict:
    """The CP2K input (aiida-cp2k ``parameters`` dict) for one structure.

    ``settings`` is the ``cp2k`` block of ``label_cp2k.yaml``; ``md`` holds ``temperature`` (K), ``timestep`` (fs),
    ``steps`` and ``sample_every`` (steps), ``thermostat`` and ``thermostat_timecon`` (fs) for ``mode='aimd'``. Single points print forces and the stress tensor into
    the main output; MD prints positions, forces and cell every ``sample_every`` steps into trajectory files.
    ``kind_names`` (default: the symbols) name the KIND sections, e.g. ``Fe1``/``Fe2`` for opposite initial moments.
    """
    if mode not in ('aimd', 'single_point'):
        raise LabelingInputError(f'unknown labelling mode `{mode}`; use `aimd` or `single_point`.')
    kinds = select_basis_and_potential(
        symbols, settings.get('basis', 'DZVP'), settings.get('xc', 'PBE'), settings.get('data_dir', DEFAULT_DATA_DIR)
    )
    magnetization = {**DEFAULT_INITIAL_MAGNETIZATION, **(settings.get('initial_magnetization') or {})}
    n_electrons = count_valence_electrons(symbols, kinds) - int(settings.get('charge', 0))
    uks = settings.get('uks', 'auto')
    if uks == 'auto':
        uks = bool(n_electrons % 2) or any(magnetization.get(s, 0) for s in set(symbols))
    moment = sum(magnetization.get(s, 0) for s in symbols) if uks else 0
    multiplicity = int(settings.get('multiplicity') or (moment + 1 if moment else 1 + n_electrons % 2))
    if (n_electrons + multiplicity - 1) % 2:
        multiplicity += 1  # parity of 2S must follow the electron count

    scf = settings.get('scf', {})
    scf_section: dict = {
        'SCF_GUESS': 'ATOMIC',
        'EPS_SCF': scf.get('eps_scf', 1e-6),
        'MAX_SCF': scf.get('max_scf', 50),
        'PRINT': {'RESTART': {'EACH': {'MD': 1, 'QS_SCF': 0}, 'BACKUP_COPIES': 0}},
    }
    if scf.get('method', 'ot') == 'ot':
        scf_section['OT'] = {'MINIMIZER': 'DIIS', 'PRECONDITIONER': scf.get('preconditioner', 'FULL_SINGLE_INVERSE')}
        scf_section['OUTER_SCF'] = {'MAX_SCF': scf.get('outer_max_scf', 10), 'EPS_SCF': scf.get('eps_scf', 1e-6)}
    else:
        scf_section.update(diagonalization_scf_section(scf))

    sample = (md or {}).get('sample_every', 1)
    each = {'MD': sample} if mode == 'aimd' else None
    dft: dict = {
        'BASIS_SET_FILE_NAME': settings.get('basis_file', 'BASIS_MOLOPT'),
        'POTENTIAL_FILE_NAME': settings.get('potential_file', 'GTH_POTENTIALS'),
        'CHARGE': int(settings.get('charge', 0)),
        'MULTIPLICITY': multiplicity,
        'MGRID': {'CUTOFF': settings['cutoff'], 'REL_CUTOFF': settings.get('rel_cutoff', 50), 'NGRIDS': 4},
        'QS': {'EPS_DEFAULT': settings.get('eps_default', 1e-10), 'EXTRAPOLATION': 'ASPC'},
        'SCF': scf_section,
        'XC': xc_section(settings.get('xc', 'PBE'), settings.get('hybrid')),
    }
    if uks:
        dft['UKS'] = True
        dft['PRINT'] = {'MULLIKEN': {'_': 'ON', **({'EACH': each} if each else {})}}
    force_eval: dict = {
        'METHOD': 'Quickstep',
        'STRESS_TENSOR': 'ANALYTICAL',
        'DFT': dft,
        'PRINT': {'STRESS_TENSOR': {'_': 'ON', **({'EACH': each} if each else {})}},
        'SUBSYS': {
            'KIND': [
                {'_': k, 'ELEMENT': s, 'BASIS_SET': kinds[s][0], 'POTENTIAL': kinds[s][1],
                 **({'MAGNETIZATION': magnetization.get(k, magnetization.get(s, 0))} if uks else {})}
                for k, s in sorted(set(zip(kind_names or symbols, symbols)))
            ]  # fmt: skip
        },
    }
    parameters: dict = {'GLOBAL': {'PRINT_LEVEL': 'LOW'}, 'FORCE_EVAL': force_eval}
    if mode == 'single_point':
        parameters['GLOBAL']['RUN_TYPE'] = 'ENERGY_FORCE'
        force_eval['PRINT']['FORCES'] = {'_': 'ON'}
    else:
        parameters['GLOBAL']['RUN_TYPE'] = 'MD'
        parameters['MOTION'] = {
            'MD': {
                'ENSEMBLE': 'NVT',
                'STEPS': md['steps'],
                'TIMESTEP': md['timestep'],
                'TEMPERATURE': md['temperature'],
                'THERMOSTAT': thermostat_section(md),
            },
            'PRINT': {
                'TRAJECTORY': {'EACH': each, 'FORMAT': 'XYZ'},
                'FORCES': {'EACH': each, 'FORMAT': 'XYZ'},
                'CELL': {'EACH': each},
                'RESTART': {'EACH': {'MD': 1}, 'BACKUP_COPIES': 0},
                'RESTART_HISTORY': {'_': 'OFF'},
            },
        }
    if settings.get('walltime_seconds'):
        parameters['GLOBAL']['WALLTIME'] = int(settings['walltime_seconds'])
    return parameters


def thermostat_section(md: dict) -> dict:
    """CP2K's NVT ``THERMOSTAT``: ``md['thermostat']`` ``csvr`` (the default) or ``nose_hoover`` (a chain of
    :data:`NOSE_HOOVER_CHAIN`), both with ``md['thermostat_timecon']`` (fs)."""
    name = md.get('thermostat', 'csvr')
    timecon = float(md.get('thermostat_timecon', 50))
    if name == 'csvr':
        return {'TYPE': 'CSVR', 'CSVR': {'TIMECON': timecon}}
    if name == 'nose_hoover':
        return {'TYPE': 'NOSE', 'NOSE': {'LENGTH': NOSE_HOOVER_CHAIN, 'TIMECON': timecon}}
    raise LabelingInputError(
        f'unknown CP2K thermostat `{name}`; set `aimd.thermostat` to one of {", ".join(THERMOSTATS)}.'
    )


def xc_section(xc: str, hybrid: dict | None = None) -> dict:
    """PBE, or PBE0 with a truncated Coulomb operator (``hybrid={'fraction': 0.25, 'cutoff_radius': Å}``): PBE0-TC-LRC,
    as CP2K's standard input (Guidon et al., JCTC 5 (2009) 3010). The exchange beyond the truncation radius, which the
    truncated HF term leaves out, is put back as PBE exchange (``PBE_HOLE_T_C_LR``, same radius, scaled by the HF
    fraction); without it the functional is PBE0-TC, whose energies depend on the radius."""
    if not hybrid:
        return {'XC_FUNCTIONAL': {'_': xc}}
    if xc != 'PBE':
        raise LabelingInputError(f'`cp2k.hybrid` builds PBE0 from PBE, but `cp2k.xc` is {xc}; set `cp2k.xc: PBE`.')
    fraction = float(hybrid.get('fraction', 0.25))
    radius = float(hybrid.get('cutoff_radius', DEFAULT_TRUNCATION_RADIUS))
    return {
        'XC_FUNCTIONAL': {
            'PBE': {'SCALE_X': 1.0 - fraction, 'SCALE_C': 1.0},
            'PBE_HOLE_T_C_LR': {'CUTOFF_RADIUS': radius, 'SCALE_X': fraction},
        },
        'HF': {
            'FRACTION': fraction,
            'SCREENING': {'EPS_SCHWARZ': 1e-6, 'SCREEN_ON_INITIAL_P': False},
            'INTERACTION_POTENTIAL': {'POTENTIAL_TYPE': 'TRUNCATED', 'CUTOFF_RADIUS': radius,
                                      'T_C_G_DATA': 't_c_g.dat'},
            'MEMORY': {'MAX_MEMORY': hybrid.get('max_memory_mb', 1000)},
        },
    }  # fmt: skip


def check_truncation_radius(hybrid: dict | None, cells: t.Mapping[str, t.Any]) -> None:
    """Raise LabelingInputError when the truncation radius of ``hybrid`` is not below half the shortest perpendicular
    width of a cell (label -> (3, 3) Å): the truncated operator then sees an atom's periodic images, which the
    truncation scheme assumes it does not. Cells compressed for the training set (strain 0.8) are the ones at risk."""
    if not hybrid:
        return
    radius = float(hybrid.get('cutoff_radius', DEFAULT_TRUNCATION_RADIUS))
    for label, cell in cells.items():
        cell = np.asarray(cell, dtype=float)
        volume = abs(np.linalg.det(cell))
        half = 0.5 * min(volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3))
        if radius >= half:
            raise LabelingInputError(
                f'PBE0 truncation radius {radius:g} Å is not below half the shortest width of cell `{label}` '
                f'({half:.2f} Å); set `cp2k.hybrid.cutoff_radius` below {half:.2f} Å or use a larger cell.'
            )


def check_settings(settings: dict, cells: t.Mapping[str, t.Any]) -> None:
    """Checks of the CP2K settings (the whole protocol dict) that need no data files, for structures with the given
    cells (label -> (3, 3) Å); run before anything is stored."""
    thermostat_section(settings.get('aimd') or {})
    check_truncation_radius(settings['cp2k'].get('hybrid'), cells)


def diagonalization_scf_section(scf: dict) -> dict:
    """Diagonalisation with Broyden mixing and Fermi-Dirac smearing: the fallback when OT does not converge (small
    gaps of hot, disordered structures)."""
    return {
        'ADDED_MOS': scf.get('added_mos', 20),
        'DIAGONALIZATION': {'_': 'ON', 'ALGORITHM': 'STANDARD'},
        'MIXING': {'METHOD': 'BROYDEN_MIXING', 'ALPHA': scf.get('mixing_alpha', 0.2), 'NBROYDEN': 8},
        'SMEAR': {'_': 'ON', 'METHOD': 'FERMI_DIRAC', 'ELECTRONIC_TEMPERATURE': scf.get('electronic_temperature', 1000)},
    }


def with_robust_scf(parameters: dict, mixing_alpha: float = 0.2, electronic_temperature: float = 1000.0) -> dict:
    """Copy of ``parameters`` with OT replaced by diagonalisation + Broyden mixing + Fermi-Dirac smearing; when that is
    already in place, halve the mixing and double the smearing temperature."""
    import copy

    parameters = copy.deepcopy(parameters)
    scf = parameters['FORCE_EVAL']['DFT']['SCF']
    if 'OT' in scf:
        scf.pop('OT')
        scf.pop('OUTER_SCF', None)
        scf.update(diagonalization_scf_section(
            {'mixing_alpha': mixing_alpha, 'electronic_temperature': electronic_temperature}
        ))  # fmt: skip
    else:
        scf['MIXING']['ALPHA'] = float(scf['MIXING'].get('ALPHA', mixing_alpha)) / 2
        smear = scf.setdefault('SMEAR', {'_': 'ON', 'METHOD': 'FERMI_DIRAC', 'ELECTRONIC_TEMPERATURE': 500.0})
        smear['ELECTRONIC_TEMPERATURE'] = float(smear.get('ELECTRONIC_TEMPERATURE', 500.0)) * 2
    scf['MAX_SCF'] = max(int(scf.get('MAX_SCF', 50)), 100)
    return parameters


# ------------------------------------------------------------------------------------------------ output parsing
_STEP = re.compile(r'i\s*=\s*(\d+)')
_ENERGY = re.compile(r'E\s*=\s*([-+\d.Ee]+)')


def parse_xyz_trajectory(text: str) -> list[dict]:
    """Frames of a CP2K ``-pos-``/``-frc-`` XYZ file: ``step``, ``energy`` (Hartree), ``symbols``, ``values`` (N, 3)."""
    lines = text.splitlines()
    frames, index = [], 0
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        count = int(lines[index].split()[0])
        comment = lines[index + 1]
        rows = [line.split() for line in lines[index + 2 : index + 2 + count]]
        if len(rows) < count:
            break  # file cut off mid-frame (a killed run): keep the complete frames
        step, energy = _STEP.search(comment), _ENERGY.search(comment)
        frames.append({
            'step': int(step.group(1)) if step else len(frames),
            'energy': float(energy.group(1)) if energy else None,
            'symbols': [r[0] for r in rows],
            'values': np.array([[float(x) for x in r[1:4]] for r in rows]),
        })  # fmt: skip
        index += 2 + count
    return frames


def parse_cell_file(text: str) -> dict[int, np.ndarray]:
    """Step -> cell (3, 3) in Å from a CP2K ``.cell`` file."""
    cells = {}
    for line in text.splitlines():
        if line.startswith('#') or not line.strip():
            continue
        values = line.split()
        cells[int(values[0])] = np.array([float(x) for x in values[2:11]]).reshape(3, 3)
    return cells


def _blocks(stdout: str, header: str) -> list[list[str]]:
    lines = stdout.splitlines()
    return [lines[i + 1 : i + 200000] for i, line in enumerate(lines) if header in line]


def parse_stress_tensors(stdout: str) -> list[np.ndarray]:
    """Every analytical ``STRESS| Analytical stress tensor [GPa]`` (3, 3) in CP2K's sign convention, in order."""
    tensors = []
    for block in _blocks(stdout, 'STRESS| Analytical stress tensor [GPa]'):
        rows = [line.split() for line in block[1:4]]
        tensors.append(np.array([[float(x) for x in row[2:5]] for row in rows]))
    return tensors


def parse_forces(stdout: str) -> list[np.ndarray]:
    """Every ``ATOMIC FORCES in [a.u.]`` block (N, 3) in Hartree/Bohr, in order."""
    result = []
    for block in _blocks(stdout, 'ATOMIC FORCES in [a.u.]'):
        rows = []
        for line in block:
            parts = line.split()
            if not parts or parts[0] == '#':
                continue
            if line.strip().startswith('SUM OF ATOMIC FORCES'):
                break
            rows.append([float(x) for x in parts[3:6]])
        result.append(np.array(rows))
    return result


def parse_energies(stdout: str) -> list[float]:
    """Every ``ENERGY| Total FORCE_EVAL ( QS ) energy [a.u.]`` in Hartree, in order."""
    return [float(line.split()[-1]) for line in stdout.splitlines() if line.startswith(' ENERGY| Total FORCE_EVAL')]


def parse_spin_moments(stdout: str) -> list[np.ndarray]:
    """Per-atom Mulliken spin moments (μB) of every Mulliken analysis of a UKS run, in order."""
    result = []
    for block in _blocks(stdout, 'Mulliken Population Analysis'):
        moments = []
        for line in block:
            parts = line.split()
            if not parts or parts[0] == '#':
                continue
            if parts[0].startswith('#') or line.strip().startswith('# Total'):
                break
            if not parts[0].isdigit():
                if moments:
                    break
                continue
            if len(parts) < 7:
                return []  # restricted run: atom, element, kind, population, net charge (no spin columns)
            moments.append(float(parts[-1]))
        result.append(np.array(moments))
    return result


SCF_NOT_CONVERGED = 'SCF run NOT converged'


def parse_scf_convergence(stdout: str) -> list[tuple[int | None, bool]]:
    """(MD step, SCF converged) of every force evaluation in CP2K's main output, in order. CP2K (2023.1 here) only
    warns ``SCF run NOT converged`` when the SCF (or OT's outer loop) reaches MAX_SCF, and goes on with that step's
    energy and forces, so the output is the only record. The step is the ``MD| Step number`` printed after the
    evaluation; None for a run's first evaluation (its start) and for single points."""
    result: list[list] = []
    converged = True
    for line in stdout.splitlines():
        if SCF_NOT_CONVERGED in line:
            converged = False
        elif line.startswith(' ENERGY| Total FORCE_EVAL'):
            result.append([None, converged])
            converged = True
        elif line.startswith(' MD| Step number') and result and result[-1][0] is None:
            result[-1][0] = int(line.split()[-1])
    return [(step, ok) for step, ok in result]


def unconverged_md_steps(stdout: str, first_step: int = 0) -> set[int]:
    """MD steps whose SCF did not converge. A run's first evaluation is the step before its first numbered one, or
    ``first_step`` (the first step in its trajectory file) when it made no MD step."""
    evaluations = parse_scf_convergence(stdout)
    numbered = [step for step, _ in evaluations if step is not None]
    start = numbered[0] - 1 if numbered else first_step
    return {start if step is None else step for step, ok in evaluations if not ok}


def last_md_step(stdout: str) -> int | None:
    """The last ``MD| Step number`` the run printed (absolute: a restart with ``RESTART_COUNTERS`` carries on the count),
    or None before the first step."""
    steps = re.findall(r'^ MD\| Step number\s+(\d+)', stdout, flags=re.M)
    return int(steps[-1]) if steps else None


def remaining_md_steps(total: int, stdout: str) -> int:
    """``MD/STEPS`` for the continuation of a run that stopped after its last printed step, so that the MD ends at step
    ``total``: with ``EXT_RESTART`` and ``RESTART_COUNTERS`` CP2K runs STEPS *more* steps counting from the restart
    file's STEP_START_VAL (checked on CP2K 2023.1: a restart at step 3 with STEPS 5 ran steps 4 to 8). The restart file
    is written every step, after the step's output, so a run killed between the two continues one step short."""
    done = last_md_step(stdout) or 0
    return max(int(total) - done, 1)


def frames_from_cp2k(files: dict[str, str], mode: str, structure: dict | None = None) -> list[dict]:
    """Labelled frames (eV, Å, eV/Å, eV/Å³ in ASE's sign, μB) from a CP2K run's retrieved files.

    ``files`` maps file names (``aiida.out``, ``aiida-pos-1.xyz``, ``aiida-frc-1.xyz``, ``aiida-1.cell``) to text.
    For ``single_point``, ``structure`` gives ``symbols``, ``positions`` and ``cell`` of the input. An MD run that
    stopped early yields the frames it completed; a trajectory frame without forces is dropped. Every frame says
    whether its SCF converged (``scf_converged``); the labelling work chain drops those that did not.
    """
    stdout = files.get(OUTPUT_FILE, '')
    stresses = [-s * GPA_TO_EV_PER_A3 for s in parse_stress_tensors(stdout)]
    moments = parse_spin_moments(stdout)
    if mode == 'single_point':
        energies, forces = parse_energies(stdout), parse_forces(stdout)
        if not energies or not forces:
            return []
        evaluations = parse_scf_convergence(stdout)
        return [{
            'symbols': list(structure['symbols']),
            'positions': np.asarray(structure['positions'], dtype=float),
            'cell': np.asarray(structure['cell'], dtype=float),
            'energy': energies[-1] * HARTREE_TO_EV,
            'forces': forces[-1] * HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM,
            'stress': stresses[-1] if stresses else None,
            'magmoms': moments[-1] if moments else None,
            'scf_converged': evaluations[-1][1] if evaluations else True,
            'metadata': {'step': 0},
        }]  # fmt: skip
    positions = parse_xyz_trajectory(files.get(POS_FILE, ''))
    forces = {f['step']: f for f in parse_xyz_trajectory(files.get(FRC_FILE, ''))}
    cells = parse_cell_file(files[CELL_FILE]) if CELL_FILE in files else {}
    unconverged = unconverged_md_steps(stdout, positions[0]['step'] if positions else 0)
    frames = []
    for index, frame in enumerate(positions):
        step = frame['step']
        if step not in forces or step not in cells and not structure:
            continue
        cell = cells.get(step, np.asarray(structure['cell']) if structure else None)
        frames.append({
            'symbols': [re.sub(r'\d+$', '', symbol) for symbol in frame['symbols']],
            'positions': frame['values'],
            'cell': cell,
            'energy': frame['energy'] * HARTREE_TO_EV,
            'forces': forces[step]['values'] * HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM,
            # Print keys with the same EACH fire at the same steps, so the n-th block belongs to the n-th frame.
            'stress': stresses[index] if index < len(stresses) else None,
            'magmoms': moments[index] if index < len(moments) and len(moments[index]) == len(frame['symbols']) else None,
            'scf_converged': step not in unconverged,
            'metadata': {'step': step},
        })  # fmt: skip
    return frames

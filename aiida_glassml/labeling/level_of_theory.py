"""Level of theory of labelled frames: what their energies and forces mean, and whether two sets of labels can be
merged. Pure Python, no AiiDA.

A level of theory is a JSON-able dict with at least ``engine`` (``cp2k``, ``qe``, ``vasp``, ``potential``, or any
name given at import). Every key is energy-relevant and compared, except those in :data:`NOT_COMPARED` (the code and
its version, labels, notes). Per-element maps (:data:`PER_ELEMENT_KEYS`: pseudopotentials, basis sets, +U values) are
compared on the elements both sets contain, so a Na-P-O set and a Na-Fe-P-O set at the same settings merge.

``None`` means unknown (a file imported without ``level_of_theory``). Combining: all unknown -> unknown; all known
and equal -> the common level (per-element maps united); anything else (different levels, or unknown with known) is
refused with :class:`LevelOfTheoryError` unless mixing is allowed, and then the merged set records every level
(``{'mixed': True, 'levels': [...]}``), which in turn differs from every other level.
"""

from __future__ import annotations

import copy
import json
import typing as t

from .errors import LabelingInputError

#: keys recorded but not compared: the same physics run by another build of the code is the same level of theory
NOT_COMPARED = ('code', 'code_versions', 'potential_label', 'potential_sha256', 'package_version', 'note')
#: maps element -> value, compared only on the elements both sides have
PER_ELEMENT_KEYS = ('pseudopotentials', 'basis_sets', 'hubbard_u')
TEACHER_NOTE = 'labels from an interatomic potential (a teacher), not from DFT'
FIX = ('relabel one set at the level of the other, or merge knowingly with allow_mixed_levels=True (the merged set '
       'then records every level)')  # fmt: skip


class LevelOfTheoryError(LabelingInputError):
    """Levels of theory that cannot be combined, or a malformed level; the message names the differences and the fix."""


# ------------------------------------------------------------------------------------------------ builders
def cp2k_level(settings: dict, elements: t.Iterable[str], code: dict | None = None) -> dict:
    """Level of ``LabelWorkChain`` engine ``cp2k``: ``settings`` is the whole protocol dict (``cp2k`` block used)."""
    from . import cp2k

    block = settings['cp2k']
    elements = sorted(set(elements))
    kinds = cp2k.select_basis_and_potential(
        elements, block['basis'], block['xc'], block['data_dir'], block['basis_file'], block['potential_file']
    )
    hybrid = block.get('hybrid')
    uks = block.get('uks', 'auto')
    return {
        'engine': 'cp2k', 'method': 'DFT (Quickstep, GPW)',
        'functional': block['xc'] if not hybrid else {
            'base': block['xc'], 'hf_fraction': float(hybrid.get('fraction', 0.25)),
            'truncation_radius': float(hybrid.get('cutoff_radius', 4.0)),
            'long_range_correction': 'PBE_HOLE_T_C_LR',  # PBE0-TC-LRC; sets made without it (PBE0-TC) differ
        },
        'hubbard_u': {element: 0.0 for element in elements},  # no DFT+U in the CP2K protocol
        'cutoff': {'cutoff_ry': float(block['cutoff']), 'rel_cutoff_ry': float(block.get('rel_cutoff', 50))},
        'spin': 'UKS' if uks is True else 'RKS' if uks is False else 'UKS for odd electron counts or magnetic elements',
        'charge': int(block.get('charge', 0)),
        'pseudopotential_family': f'GTH ({block["potential_file"]})',
        'pseudopotentials': {element: kinds[element][1] for element in elements},
        'basis_sets': {element: kinds[element][0] for element in elements},
        'basis_set_file': block['basis_file'],
        'kpoints': 'gamma',
        'code': code or {},
    }  # fmt: skip


def qe_level(settings: dict, elements: t.Iterable[str], family: str, pseudopotentials: dict[str, str],
             cutoffs: t.Iterable[tuple[float, float]], code: dict | None = None) -> dict:  # fmt: skip
    """Level of engine ``qe``: ``pseudopotentials`` element -> file name and md5 of the family's pseudopotentials;
    ``cutoffs`` the (ecutwfc, ecutrho) in Ry each structure was run at (one value when all agree)."""
    from . import qe

    block = settings['qe']
    system = block.get('system') or {}
    elements = sorted(set(elements))
    hubbard = qe.hubbard_u_values(block, elements)
    spin = block.get('spin_polarised', 'auto')
    pairs = sorted({(float(w), float(r)) for w, r in cutoffs})
    wfc, rho = [w for w, _ in pairs], [r for _, r in pairs]
    return {
        'engine': 'qe', 'method': 'DFT (plane waves, pw.x)',
        'functional': system.get('input_dft', 'as in the pseudopotentials'),
        'hubbard_u': {element: hubbard.get(element, 0.0) for element in elements},  # Dudarev
        'cutoff': {'ecutwfc_ry': wfc[0] if len(wfc) == 1 else wfc, 'ecutrho_ry': rho[0] if len(rho) == 1 else rho},
        'spin': 'collinear (nspin 2)' if spin is True else 'none' if spin is False
                else 'collinear (nspin 2) when magnetic elements are present',
        'occupations': system.get('occupations', 'fixed'),
        'pseudopotential_family': family,
        'pseudopotentials': {element: pseudopotentials[element] for element in elements if element in pseudopotentials},
        'kpoints': 'gamma',
        'code': code or {},
    }  # fmt: skip


def vasp_level(settings: dict, elements: t.Iterable[str], family: str | None, code: dict | None = None) -> dict:
    """Level of engine ``vasp``: the preset resolved (ENCUT, PREC, spin, LASPH, Dudarev U per element, POTCAR per
    element) and which energy the frames hold."""
    from . import vasp

    block = vasp.resolve_preset(settings['vasp'])
    elements = sorted(set(elements))
    hubbard = block.get('hubbard_u') or {}
    return {
        'engine': 'vasp', 'method': 'DFT (PAW, VASP)',
        'functional': 'PBE (GGA = PE)',
        'hubbard_u': {element: float(hubbard.get(element, 0.0)) for element in elements},  # Dudarev, LDAUTYPE 2
        'cutoff': {'encut_ev': float(block['encut'])},
        'precision': str(block['prec']),
        'lasph': bool(block['lasph']),
        'spin': 'collinear (ISPIN 2)' if int(block['ispin']) == 2 else 'none (ISPIN 1)',
        'smearing': {'ismear': 0, 'sigma_ev': float(block.get('sigma', 0.05))},
        'energy': 'sigma->0 (VASP energy(sigma->0), aiida-vasp energy_extrapolated)',
        'pseudopotential_family': family,
        'pseudopotentials': vasp.potential_mapping(elements, block) if elements else {},
        'kpoints': 'gamma',
        'code': code or {},
    }  # fmt: skip


def potential_level(potential_type: str, uuid: str, label: str | None = None, sha256: str | None = None,
                    name: str | None = None, code: dict | None = None, mlip: dict | None = None) -> dict:  # fmt: skip
    """Level of the teacher engine: an interatomic potential (``ace``, ``classical`` or ``mlip``), identified by its
    node UUID. ``mlip``: an MLIP's ``calculator``, ``calculator_kwargs``, ``model_sha256`` (its weights),
    ``shipped_model`` and ``package``/``package_version`` (the version is recorded, not compared)."""
    level = {
        'engine': 'potential', 'method': 'interatomic potential', 'potential_type': potential_type,
        'potential_uuid': uuid, 'note': TEACHER_NOTE, 'code': code or {},
    }  # fmt: skip
    if name:
        level['potential_name'] = name
    if label:
        level['potential_label'] = label
    if sha256:
        level['potential_sha256'] = sha256
    level.update({key: value for key, value in (mlip or {}).items() if value is not None})
    return level


# ------------------------------------------------------------------------------------------------ checks
def validate_level(level: t.Any) -> dict | None:
    """``level`` as a plain JSON dict (or None); raises LevelOfTheoryError naming what is wrong with it."""
    if level is None:
        return None
    if not isinstance(level, dict):
        raise LevelOfTheoryError(
            f'level_of_theory must be a dict such as {{"engine": "vasp", "functional": "PBE", ...}} or None, got '
            f'{type(level).__name__}.'
        )
    if not level.get('mixed') and not (isinstance(level.get('engine'), str) and level['engine']):
        raise LevelOfTheoryError(
            f'level_of_theory needs an `engine` (e.g. "vasp", "cp2k", "qe"), got keys {sorted(level)}; add it, and '
            'the functional, +U values, cutoff, spin treatment and pseudopotentials the labels were made with.'
        )
    try:
        return json.loads(json.dumps(level, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise LevelOfTheoryError(
            f'level_of_theory must be JSON-serialisable (strings, numbers, lists, dicts): {exc}.'
        ) from exc


def _flatten(level: dict, prefix: str = '') -> dict[str, t.Any]:
    flat = {}
    for key, value in level.items():
        path = f'{prefix}{key}'
        if not prefix and key in NOT_COMPARED:
            continue
        if isinstance(value, dict) and value and key not in PER_ELEMENT_KEYS:
            flat.update(_flatten(value, f'{path}.'))
        else:
            flat[path] = value
    return flat


def compare_levels(a: dict | None, b: dict | None) -> list[str]:
    """Differences in the energy-relevant keys of two levels, one ``key: a vs b`` line each; [] when compatible.
    Per-element maps are compared on the elements both have; code versions are not compared."""
    if a is None and b is None:
        return []
    if a is None or b is None:
        return ['level of theory unknown (imported without `level_of_theory`) vs ' + _summary(a if b is None else b)]
    if a.get('mixed') or b.get('mixed'):
        return [] if a == b else ['a set that already mixes levels of theory (merged with allow_mixed_levels)']
    flat_a, flat_b = _flatten(a), _flatten(b)
    differences = []
    for key in sorted(set(flat_a) | set(flat_b)):
        value_a, value_b = flat_a.get(key), flat_b.get(key)
        if key in PER_ELEMENT_KEYS and isinstance(value_a, dict) and isinstance(value_b, dict):
            for element in sorted(set(value_a) & set(value_b)):
                if not _equal(value_a[element], value_b[element]):
                    differences.append(f'{key}[{element}]: {value_a[element]!r} vs {value_b[element]!r}')
        elif not _equal(value_a, value_b):
            differences.append(f'{key}: {value_a!r} vs {value_b!r}')
    return differences


def _equal(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    return a == b


def _summary(level: dict) -> str:
    if level.get('mixed'):
        return 'mixed levels'
    if level.get('engine') == 'potential':
        return f'potential teacher {level.get("potential_uuid")}'
    return f'engine {level.get("engine")!r}, functional {level.get("functional")!r}'


def combine_levels(levels: t.Mapping[str, dict | None], allow_mixed: bool = False) -> dict | None:
    """The level of a merge of sets named by the keys of ``levels`` (in order). Raises LevelOfTheoryError naming
    every difference against the first set unless ``allow_mixed``."""
    names = list(levels)
    if not names:
        return None
    first = names[0]
    problems = []
    for name in names[1:]:
        differences = compare_levels(levels[first], levels[name])
        if differences:
            problems.append(f'{first} vs {name}: ' + '; '.join(differences))
    if not problems:
        return _unite([levels[name] for name in names])
    if not allow_mixed:
        hint = ''
        if any(levels[name] is None for name in names):
            hint = ('; record the level of an imported set with `TrainingSetData.from_file(path, '
                    'level_of_theory={...})` (CLI: `data import training-set --level-of-theory JSON`)')  # fmt: skip
        raise LevelOfTheoryError(
            f'refusing to merge training sets labelled at different levels of theory ({" | ".join(problems)}): their '
            f'energies are not on one scale (CP2K/GTH and VASP/PAW totals differ by hundreds of eV per atom), so the '
            f'merged set could not be fitted; {FIX}{hint}.'
        )
    distinct: list = []
    for name in names:
        members = levels[name]['levels'] if levels[name] and levels[name].get('mixed') else [levels[name]]
        for member in members:
            if member not in distinct:
                distinct.append(copy.deepcopy(member))
    return {'mixed': True, 'levels': distinct}


def _unite(levels: list[dict | None]) -> dict | None:
    """Compatible levels as one: per-element maps united, the code records of every set kept (when they differ)."""
    if levels[0] is None or levels[0].get('mixed'):
        return copy.deepcopy(levels[0])
    united = copy.deepcopy(levels[0])
    for level in levels[1:]:
        for key in PER_ELEMENT_KEYS:
            if isinstance(level.get(key), dict) and isinstance(united.get(key), dict):
                united[key] = dict(sorted({**level[key], **united[key]}.items()))
    codes: list = []
    for level in levels:
        for code in level.get('code_versions') or [level.get('code')]:
            if code is not None and code not in codes:
                codes.append(code)
    if len(codes) > 1:
        united['code'] = codes[0]
        united['code_versions'] = codes
    return united

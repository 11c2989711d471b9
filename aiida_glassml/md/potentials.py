"""Classical glass potentials with partial charges: parameters, references and LAMMPS rendering.

Three families (eV, Å, e):

``teter``
    Buckingham ``A exp(-r/ρ) - C/r⁶`` + Coulomb (Teter, as published by Du & Cormack); ``pair_style buck/coul/long``.
    ``teter_fe`` (``teter(iron=True)``) adds Fe2+/Fe3+–O from Kalahe et al. 2025; ``du_fe`` likewise for ``du``.
``bmp``
    Morse + ``B/r¹²`` (Pedone 2006 form) + Coulomb, a P–P Buckingham repulsion, and screened harmonic three-body
    terms ``(K/2)(θ-θ0)² exp(-r_ij/ρ - r_ik/ρ)`` (Bertani–Menziani–Pedone, BMP-shrm); rendered as
    ``pair_style hybrid/overlay pedone coul/long buck nb3b/screened`` (``nb3b/screened`` takes K/2, see below).
``du``
    Buckingham with a short-range correction (Du-type): ``B/rⁿ + D r²`` below ``r_s`` and Buckingham above, spliced
    for continuity; rendered as a tabulated ``pair_style table`` overlaid on ``coul/long`` (the table file is written
    beside the input), because LAMMPS has no analytic style for the spliced form.

Species are labels such as ``Na``, ``Fe`` (Fe2+), ``Fe3`` (Fe3+), ``V4`` (V4+), ``V5`` (V5+): they map to LAMMPS types
through the structure's kind names (a kind named ``V4`` with symbol V uses the ``V4`` parameters). A kind named
only by its element uses that element's single species; an element with several species (V) then is an error.

Three-body terms in a form LAMMPS has no native style for are refused unless the caller passes
``drop_three_body=True`` (never dropped silently). Pure Python; no AiiDA imports.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing as t

import numpy as np

#: three-body forms that the LAMMPS renderer can express natively
SUPPORTED_THREE_BODY_FORMS = ('screened_harmonic',)
PAIR_FORMS = ('buckingham', 'morse_r12', 'buckingham_src')

REFERENCES = {
    'teter': 'A. N. Cormack, J. Du, T. R. Zeitler, Phys. Chem. Chem. Phys. 4 (2002) 3193, doi:10.1039/b201721k; '
             'J. Du, A. N. Cormack, J. Non-Cryst. Solids 349 (2004) 66, doi:10.1016/j.jnoncrysol.2004.08.264 '
             '(Teter potential, private communication; O-O, Na-O, P-O as tabulated there)',
    'pedone': 'A. Pedone, G. Malavasi, M. C. Menziani, A. N. Cormack, U. Segre, J. Phys. Chem. B 110 (2006) 11780, '
              'doi:10.1021/jp0611018 (Fe2+-O and Fe3+-O Morse + B/r^12 parameters, charges 1.2/1.8)',
    'bmp': 'M. Bertani, M. C. Menziani, A. Pedone, Phys. Rev. Materials 5 (2021) 045602, '
           'doi:10.1103/PhysRevMaterials.5.045602 (BMP form: Morse + B/r^12, P-P Buckingham, screened harmonic '
           'three-body terms)',
    'bmp_amorphouspy': 'P-P Buckingham A 5.093669 eV, rho 0.905598 A, C 0 as tabulated for Bertani et al. 2021 in '
                       'amorphouspy (github.com/glasagent/amorphouspy, amorphouspy/src/amorphouspy/potentials/'
                       'bmp_potential.py, commit 8e008e155f7305eb70b9cb3a2de9c18816428877)',
    'navpo_thesis': 'Na-V-P-O glass thesis (issue 6 of aiida-glassml): BMP Na-O, O-O, P-O, V4+-O, V5+-O, P-P '
                    'and three-body parameters; Du-type O-O, P-O, V4+-O, V5+-O parameters',
    'yang2020': 'Teter O-O and Na-O parameters as re-tabulated (with their charges) in Table 1 of "Predicting '
                'densities and elastic moduli of SiO2-based glasses by machine learning", npj Comput. Mater. (2020), '
                'doi:10.1038/s41524-020-0291-z (no Fe parameters there)',
    'deng_du': 'L. Deng, J. Du, J. Am. Ceram. Soc. 102 (2019) 2482, doi:10.1111/jace.16082 (Du-type short-range '
               'corrected Na-O parameters)',
    'kalahe2025': 'J. Kalahe, X. Lu, K. Miller, M. Peterson, B. J. Riley, J. D. Vienna, J. E. Saal, J. Du, Chem. '
                  'Mater. 37 (2025) 8595, doi:10.1021/acs.chemmater.5c01505, Table 1 (Teter/Du-type Fe2+-O, q 1.2, and '
                  'Fe3+-O, q 1.8, Buckingham A, rho, C and short-range B, D, n, r_s), as transcribed in amorphouspy '
                  '(github.com/glasagent/amorphouspy, amorphouspy/src/amorphouspy/potentials/du_teter_potential.py, '
                  'commit 0553eca4d31b90c17f60340aebf53cdde110c64d); the paper itself was not read here',
}

#: Teter/Du-type Fe–O parameters (Kalahe et al. 2025, Table 1). Their r_s is where the Buckingham third derivative
#: vanishes and the published B, D join A, ρ, C there within 0.1 %: a check that the transcription is consistent.
FE_O_TETER = {
    'Fe-O': {'A': 11777.0703, 'rho': 0.207132, 'C': 21.642, 'r_s': 0.917, 'B': 104.203, 'D': -32.110, 'n': 2.670},
    'Fe3-O': {'A': 19952.29, 'rho': 0.182538, 'C': 4.6583, 'r_s': 0.626, 'B': 260.983, 'D': -340.739, 'n': 2.115},
}
#: what a structure with an element a library potential lacks should use instead (appended to the refusal)
COVERAGE_HINTS = {
    'teter': {'Fe': "for Fe use teter(iron=True) (library 'teter_fe': Fe2+/Fe3+ of Kalahe et al. 2025)"},
    'du': {'Fe': "for Fe use du(iron=True) (library 'du_fe': Fe2+/Fe3+ of Kalahe et al. 2025)"},
}


class PotentialError(ValueError):
    """A classical potential that cannot be used as asked; the message names the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class ClassicalPotential:
    """A complete classical potential: charges, pair terms, three-body terms, references."""

    name: str
    form: str
    charges: dict  # species -> charge (e)
    species_elements: dict  # species -> element symbol
    pairs: dict  # 'A-B' (sorted species) -> parameters
    three_body: tuple = ()  # dicts: form, center, ends, K (eV/rad²), theta0 (deg), rho (Å), cutoff (Å)
    extra_pairs: dict = dataclasses.field(default_factory=dict)  # 'A-B' -> {'A','rho','C'} Buckingham (BMP P-P)
    cutoff: float = 10.0  # Å, real-space cutoff of the short-range and Coulomb terms
    kspace: str = 'pppm'
    kspace_accuracy: float = 1.0e-5
    references: tuple = ()
    notes: str = ''

    def __post_init__(self):
        if self.form not in PAIR_FORMS:
            raise PotentialError(f'unknown pair form {self.form!r}; use one of {PAIR_FORMS}.')
        for key in list(self.pairs) + list(self.extra_pairs):
            for species in key.split('-'):
                if species not in self.charges:
                    raise PotentialError(f'pair {key} names species {species!r} without a charge.')

    # -- serialisation --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data['three_body'] = [dict(term) for term in self.three_body]
        data['references'] = list(self.references)
        return data

    @classmethod
    def from_dict(cls, data: t.Mapping) -> ClassicalPotential:
        data = dict(data)
        data['three_body'] = tuple(dict(term) for term in data.get('three_body', ()))
        data['references'] = tuple(data.get('references', ()))
        return cls(**data)

    # -- species / coverage ---------------------------------------------------------------------------------------
    @property
    def elements(self) -> list[str]:
        return sorted(set(self.species_elements.values()))

    def species_for_kind(self, kind_name: str, symbol: str) -> str:
        """The species a structure kind uses: the kind name if it is a species, else the element's only species."""
        if kind_name in self.charges:
            if self.species_elements[kind_name] != symbol:
                raise PotentialError(f'kind {kind_name!r} has symbol {symbol} but species {kind_name!r} of potential '
                                     f'{self.name!r} is {self.species_elements[kind_name]}.')
            return kind_name
        candidates = [s for s, element in self.species_elements.items() if element == symbol]
        if not candidates:
            raise PotentialError(
                f'potential {self.name!r} has no parameters for element {symbol} (kind {kind_name!r}); it covers '
                f'{self.elements}. Use a potential that covers every element of the structure.'
            )
        if len(candidates) > 1:
            raise PotentialError(
                f'element {symbol} has several species in potential {self.name!r}: {sorted(candidates)}; name the '
                f'structure kinds after them (e.g. kind {candidates[0]!r} with symbol {symbol}).'
            )
        return candidates[0]

    def check_covers(self, kinds: t.Sequence[tuple[str, str]]) -> list[str]:
        """Species for ``(kind_name, symbol)`` pairs; raises :class:`PotentialError` naming what is missing."""
        missing = sorted({symbol for _, symbol in kinds if symbol not in self.elements})
        if missing:
            hints = [COVERAGE_HINTS.get(self.name, {}).get(symbol) for symbol in missing]
            hint = ''.join(f' ({h})' for h in hints if h)
            raise PotentialError(
                f'potential {self.name!r} does not cover element(s) {missing} of the structure; it covers '
                f'{self.elements}. Choose a potential with parameters for every element, or remove those atoms{hint}.'
            )
        return [self.species_for_kind(name, symbol) for name, symbol in kinds]

    def active_three_body(self, species: t.Iterable[str]) -> list[dict]:
        present = set(species)
        return [term for term in self.three_body if term['center'] in present and set(term['ends']) <= present]

    # -- LAMMPS ---------------------------------------------------------------------------------------------------
    def lammps_lines(
        self, type_species: t.Sequence[str], drop_three_body: bool = False
    ) -> tuple[list[str], dict[str, str]]:
        """``pair_style``/``pair_coeff``/``kspace_style`` lines for LAMMPS types 1..n = ``type_species`` and the
        auxiliary files they read (name → content). Charges are set with ``set type``."""
        type_species = list(type_species)
        three_body = self.active_three_body(type_species)
        unsupported = [term for term in three_body if term['form'] not in SUPPORTED_THREE_BODY_FORMS]
        if unsupported and not drop_three_body:
            names = ', '.join(_three_body_label(term) for term in unsupported)
            raise PotentialError(
                f'potential {self.name!r} has three-body terms ({names}) in a form LAMMPS has no native style for; '
                'they are not supported. Pass drop_three_body=True to run without them, knowingly.'
            )
        if drop_three_body:
            three_body = []

        lines: list[str] = []
        files: dict[str, str] = {}
        n = len(type_species)
        pairs = [(i, j) for i in range(1, n + 1) for j in range(i, n + 1)]

        def key(i: int, j: int) -> str:
            return '-'.join(sorted((type_species[i - 1], type_species[j - 1])))

        rc = f'{self.cutoff:g}'
        if self.form == 'buckingham' and not self.extra_pairs and not three_body:
            lines.append(f'pair_style buck/coul/long {rc}')
            for i, j in pairs:
                p = self.pairs.get(key(i, j))
                coeffs = f'{p["A"]} {p["rho"]} {p["C"]}' if p else '0.0 1.0 0.0'
                lines.append(f'pair_coeff {i} {j} {coeffs}  # {key(i, j)}')
        else:
            styles = ['coul/long', rc]
            short = {'buckingham': 'buck', 'morse_r12': 'pedone', 'buckingham_src': 'table'}[self.form]
            if self.form == 'buckingham_src':
                styles += ['table', 'linear', str(TABLE_POINTS)]
            else:
                styles += [short, rc]
            if self.extra_pairs and short != 'buck':
                styles += ['buck', rc]
            if three_body:
                styles += ['nb3b/screened']
            lines.append('pair_style hybrid/overlay ' + ' '.join(styles))
            lines.append('pair_coeff * * coul/long')
            table_sections: dict[str, str] = {}
            for i, j in pairs:
                k = key(i, j)
                p = self.pairs.get(k)
                if p is None:
                    continue
                if self.form == 'buckingham':
                    lines.append(f'pair_coeff {i} {j} buck {p["A"]} {p["rho"]} {p["C"]}  # {k}')
                elif self.form == 'morse_r12':
                    lines.append(f'pair_coeff {i} {j} pedone {p["D"]} {p["a"]} {p["r0"]} {p["B"]}  # {k}')
                else:
                    section = k.replace('-', '_')
                    table_sections[section] = _table_section(section, p, self.cutoff)
                    lines.append(f'pair_coeff {i} {j} table {TABLE_FILE} {section} {rc}  # {k}')
            for i, j in pairs:
                k = key(i, j)
                p = self.extra_pairs.get(k)
                if p is not None:
                    lines.append(f'pair_coeff {i} {j} buck {p["A"]} {p["rho"]} {p["C"]}  # {k} repulsion')
            if table_sections:
                files[TABLE_FILE] = _table_header(self.name) + ''.join(table_sections[s] for s in sorted(table_sections))
            if three_body:
                files[NB3B_FILE] = nb3b_screened_file(three_body, self.name)
                mapped = [s if s in _three_body_species(three_body) else 'NULL' for s in type_species]
                lines.append(f'pair_coeff * * nb3b/screened {NB3B_FILE} ' + ' '.join(mapped))
        lines.append(f'kspace_style {self.kspace} {self.kspace_accuracy:g}')
        return lines, files

    def charge_lines(self, type_species: t.Sequence[str]) -> list[str]:
        return [f'set type {i} charge {self.charges[s]}  # {s}' for i, s in enumerate(type_species, start=1)]


TABLE_FILE = 'short_range.table'
NB3B_FILE = 'three_body.nb3b.screened'
TABLE_POINTS = 5000
TABLE_R_MIN = 0.5  # Å; closer approaches than this do not occur in a sane melt


def _three_body_label(term: dict) -> str:
    a, b = term['ends']
    return f'{a}-{term["center"]}-{b}'


def _three_body_species(terms: t.Sequence[dict]) -> set[str]:
    species = set()
    for term in terms:
        species.add(term['center'])
        species.update(term['ends'])
    return species


def nb3b_screened_file(terms: t.Sequence[dict], name: str) -> str:
    """A ``pair_style nb3b/screened`` parameter file. LAMMPS's energy is ``K (θ-θ0)² exp(-r_ij/ρ_ij - r_ik/ρ_ik)``
    with the 1/2 inside K, so K_lammps = K/2. Every permutation of the species involved gets a line (zeros where
    there is no term); a line ``i j j`` also carries ρ and the cutoff of the i–j pair."""
    species = sorted(_three_body_species(terms))
    by_triplet = {}
    pair_params: dict[tuple[str, str], tuple[float, float]] = {}
    for term in terms:
        a, b = term['ends']
        for j, k in ((a, b), (b, a)):
            by_triplet[(term['center'], j, k)] = term
        for end in (a, b):
            pair_params[(term['center'], end)] = (term['rho'], term['cutoff'])
    out = [f'# nb3b/screened parameters for {name}, written by aiida-glassml\n',
           '# i(center) j k  K/2 (eV/rad^2)  theta0 (deg)  rho (A)  cutoff (A)\n']
    for i in species:
        for j in species:
            for k in species:
                term = by_triplet.get((i, j, k))
                rho, cutoff = pair_params.get((i, j), (1.0, 0.0)) if j == k else (1.0, 0.0)
                if term is not None:
                    rho, cutoff = pair_params[(i, j)]
                    out.append(f'{i} {j} {k} {term["K"] / 2:.6f} {term["theta0"]:.4f} {rho} {cutoff}\n')
                else:
                    out.append(f'{i} {j} {k} 0.0 0.0 {rho} {cutoff}\n')
    return ''.join(out)


# -- Du-type short-range corrected Buckingham, tabulated ----------------------------------------------------------
def buckingham_src_energy(r: np.ndarray, p: t.Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Energy and force (−dE/dr) of ``A exp(-r/ρ) - C/r⁶`` for r ≥ r_s and ``B/rⁿ + D r²`` for r < r_s."""
    r = np.asarray(r, dtype=float)
    buck = p['A'] * np.exp(-r / p['rho']) - p['C'] / r**6
    dbuck = -p['A'] / p['rho'] * np.exp(-r / p['rho']) + 6 * p['C'] / r**7
    short = p['B'] / r ** p['n'] + p['D'] * r**2
    dshort = -p['n'] * p['B'] / r ** (p['n'] + 1) + 2 * p['D'] * r
    inner = r < p['r_s']
    return np.where(inner, short, buck), -np.where(inner, dshort, dbuck)


def _table_header(name: str) -> str:
    return f'# Du-type short-range corrected Buckingham ({name}), written by aiida-glassml; eV, Angstrom\n\n'


def _table_section(section: str, p: t.Mapping, cutoff: float) -> str:
    r = np.linspace(TABLE_R_MIN, cutoff, TABLE_POINTS)
    energy, force = buckingham_src_energy(r, p)
    rows = '\n'.join(f'{i + 1} {ri:.8f} {e:.10e} {f:.10e}' for i, (ri, e, f) in enumerate(zip(r, energy, force)))
    return f'{section}\nN {TABLE_POINTS} R {TABLE_R_MIN} {cutoff:g}\n\n{rows}\n\n'


# -- library -----------------------------------------------------------------------------------------------------
CHARGES = {'Na': 0.6, 'Fe': 1.2, 'Fe3': 1.8, 'P': 3.0, 'O': -1.2, 'V4': 2.4, 'V5': 3.0}
SPECIES_ELEMENTS = {'Na': 'Na', 'Fe': 'Fe', 'Fe3': 'Fe', 'P': 'P', 'O': 'O', 'V4': 'V', 'V5': 'V'}


def _subset(mapping: dict, species: t.Iterable[str]) -> dict:
    return {s: mapping[s] for s in species}


def teter(cutoff: float = 10.0, iron: bool = False) -> ClassicalPotential:
    """Teter-type Buckingham with partial charges (Na 0.6, P 3.0, O -1.2) for Na-P-O; with ``iron=True`` also Fe2+
    (species ``Fe``, q 1.2) and Fe3+ (``Fe3``, q 1.8) from Kalahe et al. 2025 (Du group), named ``teter_fe``.

    Iron is opt-in so that ``teter`` stays the Na-P-O potential that earlier nodes and workflows used. The NaFePO4
    study's Teter glasses carry Fe at +1.2 (Fe2+ only), which matches the ``Fe`` species here.
    """
    species = ('Na', 'Fe', 'Fe3', 'P', 'O') if iron else ('Na', 'P', 'O')
    pairs = {
        'O-O': {'A': 2029.2204, 'rho': 0.343645, 'C': 192.58},
        'Na-O': {'A': 4383.7555, 'rho': 0.243838, 'C': 30.70},
        'O-P': {'A': 26655.472, 'rho': 0.181968, 'C': 86.856},
    }
    if iron:
        pairs.update({key: {k: p[k] for k in ('A', 'rho', 'C')} for key, p in FE_O_TETER.items()})
    references = (REFERENCES['teter'], REFERENCES['yang2020']) + ((REFERENCES['kalahe2025'],) if iron else ())
    return ClassicalPotential(
        name='teter_fe' if iron else 'teter', form='buckingham', charges=_subset(CHARGES, species),
        species_elements=_subset(SPECIES_ELEMENTS, species), pairs=pairs, cutoff=cutoff, references=references,
        notes='Plain Buckingham has a spurious minimum at short range (Buckingham catastrophe): above ~2500 K use '
              'the Du-type short-range corrected form (`du`) or a short timestep. '
              + ('Fe2+-O and Fe3+-O: Kalahe et al. 2025, Table 1, transcribed from amorphouspy (see references); '
                 'name kinds Fe (Fe2+) and Fe3 (Fe3+).' if iron else
                 'No Fe here: teter(iron=True) (library teter_fe) adds Fe2+/Fe3+ from Kalahe et al. 2025.'),
    )  # fmt: skip


#: why the BMP library potential reads the thesis's three-body terms as former-centred (kept in the node's notes)
BMP_THREE_BODY_NOTE = (
    'Three-body terms are former-centred: the thesis lists "P-O-P: K 65.0, theta0 109.47 deg; P-O-V: K 120, theta0 '
    '109.00 deg; V-O-V: K 30, theta0 109.00 deg". 109.47 deg is the tetrahedral O-X-O angle, while bridging X-O-X '
    'angles in phosphate glasses are ~130-145 deg, and the BMP-shrm potential (Bertani et al. 2021) puts its '
    'screened harmonic terms on O-former-O angles. So P-O-P is read as O-P-O (centre P; K 65, theta0 109.47) and V-O-V '
    'as O-V-O (centre V4 and V5; K 30, theta0 109.00). The mixed P-O-V term (K 120, theta0 109.00) has no single '
    'former centre under this reading, and read as a bridging angle at O its 109 deg contradicts the glass '
    'structure, so it is NOT included (documented here, not silently dropped); add it with potentials.custom() once '
    'its meaning is confirmed. rho = 1 A; the three-body cutoff on the former-O distance is our choice (first '
    'shell: P-O ~1.5 A, V-O <= ~2.1 A; next O beyond ~3 A).'
)
#: BMP P-P Buckingham repulsion (eV, Å, eV Å⁶) and where the value comes from (kept in the node's notes)
BMP_P_P = {'A': 5.093669, 'rho': 0.905598, 'C': 0.0}
BMP_P_P_NOTE = (
    'P-P Buckingham repulsion A 5.093669 eV, rho 0.905598 A, C 0 (on by default). The thesis table prints "5.09 3669", '
    'which was first read as 5093.669 eV; that is 185 eV per P-P pair at 3 A and blows a melt apart (NaPO3 at 3000 K '
    'and 0 bar expands to ~0.2 g/cm3). amorphouspy\'s BMP table for Bertani et al. 2021 gives P-P and Si-P as '
    '(5.093669, 0.905598, 0) and Si-Si as (7.093669, 0.975598, 0), so the space is a typesetting split of 5.093669: '
    '0.19 eV per pair at 3 A, and the NaPO3 melt keeps the density it has without the term (~1.6 g/cm3 at 3000 K).'
)


def bmp(cutoff: float = 10.0, three_body_cutoff: float = 2.5, p_p_repulsion: bool = True) -> ClassicalPotential:
    """BMP/Pedone Morse + B/r¹² with partial charges for Na-Fe-P-O and Na-V-P-O (V4+ as species ``V4``, V5+ as
    ``V5``, Fe2+ as ``Fe``, Fe3+ as ``Fe3``) and screened harmonic three-body terms on the O–P–O and O–V–O angles
    (ρ = 1 Å; cutoff ``three_body_cutoff`` on the former–O distance, our choice).

    Na, O, P, V and three-body values: the Na-V-P-O thesis (issue 6). Fe2+/Fe3+: Pedone et al. 2006.

    The three-body terms are read as former-centred and the mixed P–O–V term is not included
    (:data:`BMP_THREE_BODY_NOTE` gives the reasoning). ``p_p_repulsion`` (default on) adds the P–P Buckingham
    repulsion, A = 5.093669 eV (:data:`BMP_P_P_NOTE` gives the evidence). Both notes are stored in ``notes``.
    """
    d = {
        'Na-O': {'D': 0.023363, 'a': 1.763867, 'r0': 3.006315, 'B': 1.0},
        'O-O': {'D': 0.042395, 'a': 1.379316, 'r0': 3.618701, 'B': 100.0},
        'O-P': {'D': 0.831326, 'a': 2.585833, 'r0': 1.790790, 'B': 1.0},
        'O-V4': {'D': 0.032832, 'a': 2.109308, 'r0': 2.663618, 'B': 1.0},
        'O-V5': {'D': 0.021911, 'a': 1.495955, 'r0': 3.398507, 'B': 1.0},
        'Fe-O': {'D': 0.078171, 'a': 1.822638, 'r0': 2.658163, 'B': 2.0},
        'Fe3-O': {'D': 0.418981, 'a': 1.620376, 'r0': 2.382183, 'B': 2.0},
    }

    def o_x_o(centre, k, theta0, published_as):
        return {'form': 'screened_harmonic', 'center': centre, 'ends': ('O', 'O'), 'K': k, 'theta0': theta0,
                'rho': 1.0, 'cutoff': three_body_cutoff, 'published_as': published_as}
    three_body = (
        o_x_o('P', 65.0, 109.47, 'P-O-P'),
        o_x_o('V4', 30.0, 109.0, 'V-O-V'), o_x_o('V5', 30.0, 109.0, 'V-O-V'),
    )
    return ClassicalPotential(
        name='bmp', form='morse_r12', charges=dict(CHARGES), species_elements=dict(SPECIES_ELEMENTS), pairs=d,
        extra_pairs={'P-P': dict(BMP_P_P)} if p_p_repulsion else {},
        three_body=three_body, cutoff=cutoff,
        references=(REFERENCES['navpo_thesis'], REFERENCES['bmp'], REFERENCES['pedone'], REFERENCES['bmp_amorphouspy']),
        notes=' '.join((
            'Three-body terms use LAMMPS nb3b/screened (K/2 in the file).', BMP_THREE_BODY_NOTE,
            BMP_P_P_NOTE if p_p_repulsion else 'The P-P Buckingham repulsion is OFF (p_p_repulsion=False).',
        )),
    )  # fmt: skip


def splice_coefficients(p: t.Mapping) -> tuple[float, float]:
    """``(B, D)`` of the Du-type inner branch ``B/rⁿ + D r²`` that meets ``A exp(-r/ρ) - C/r⁶`` at ``r_s`` with the
    same energy and force (given n and r_s): two linear equations in B and D."""
    r_s, n = p['r_s'], p['n']
    energy = p['A'] * np.exp(-r_s / p['rho']) - p['C'] / r_s**6
    slope = -p['A'] / p['rho'] * np.exp(-r_s / p['rho']) + 6 * p['C'] / r_s**7
    matrix = np.array([[r_s**-n, r_s**2], [-n * r_s ** (-n - 1), 2 * r_s]])
    b, d = np.linalg.solve(matrix, [energy, slope])
    return float(b), float(d)


def du(cutoff: float = 10.0, iron: bool = False) -> ClassicalPotential:
    """Du-type Buckingham with short-range correction for Na-V-P-O (V4+ ``V4``, V5+ ``V5``).

    O, P, V: the Na-V-P-O thesis; Na: Deng & Du 2019. ``iron=True`` adds Fe2+ (``Fe``) and Fe3+ (``Fe3``) from
    Kalahe et al. 2025 (named ``du_fe``; see :func:`teter`).

    The published B and D are rounded, so the published splice jumps at r_s (0.1–0.5 % in energy for O–O, P–O, V4–O,
    Na–O; 16 % for V5–O, whose published B is probably a typo). B and D are refitted to the published A, ρ, C, r_s
    and n so that energy and force are continuous at r_s (:func:`splice_coefficients`); the published values are
    kept as ``B_published``/``D_published``. The refit moves B and D by < 0.5 % except V5–O (B 255.3 → 225.5).
    """
    species = ('Na', 'P', 'O', 'V4', 'V5') + (('Fe', 'Fe3') if iron else ())

    def src(a, rho, c, r_s, b, dd, n):
        pair = {'A': a, 'rho': rho, 'C': c, 'r_s': r_s, 'n': n, 'B_published': b, 'D_published': dd}
        pair['B'], pair['D'] = splice_coefficients(pair)
        return pair
    pairs = {
        'O-O': src(2029.2204, 0.3436, 192.580, 1.906, 46.339, -0.328, 3.424),
        'O-P': src(26655.4720, 0.1820, 86.856, 1.169, 28.566, -3.406, 4.636),
        'O-V4': src(6199.7311, 0.2152, 25.516, 1.093, 39.879, -5.599, 3.065),
        'O-V5': src(23300.0, 0.1799, 8.649, 0.684, 255.295, -229.2793, 2.314),
        'Na-O': src(4383.7555, 0.243838, 30.700, 1.172, 48.264, -4.730, 2.893),
    }
    if iron:
        pairs.update({key: src(p['A'], p['rho'], p['C'], p['r_s'], p['B'], p['D'], p['n'])
                      for key, p in FE_O_TETER.items()})
    return ClassicalPotential(
        name='du_fe' if iron else 'du', form='buckingham_src', charges=_subset(CHARGES, species),
        species_elements=_subset(SPECIES_ELEMENTS, species), pairs=pairs, cutoff=cutoff,
        references=(REFERENCES['navpo_thesis'], REFERENCES['deng_du'], REFERENCES['teter'])
        + ((REFERENCES['kalahe2025'],) if iron else ()),
        notes=f'Tabulated for LAMMPS pair_style table ({TABLE_POINTS} points from {TABLE_R_MIN} Å to the cutoff). '
              'B and D of the short-range splice are refitted for continuous energy and force at r_s; the published '
              'values are kept as B_published/D_published. '
              + ('Fe2+-O and Fe3+-O: Kalahe et al. 2025 (see references).' if iron else
                 'No Fe here: du(iron=True) (library du_fe) adds Fe2+/Fe3+ from Kalahe et al. 2025.'),
    )  # fmt: skip


def custom(**fields) -> ClassicalPotential:
    """Any potential in the same layout, e.g. with Fe parameters the user takes from a paper (pass ``references``)."""
    if not fields.get('references'):
        raise PotentialError('a custom potential needs `references` naming where its parameters come from.')
    fields['references'] = tuple(fields['references'])
    fields['three_body'] = tuple(fields.get('three_body', ()))
    return ClassicalPotential(**fields)


LIBRARY: dict[str, t.Callable[..., ClassicalPotential]] = {
    'teter': teter, 'bmp': bmp, 'du': du,
    'teter_fe': functools.partial(teter, iron=True), 'du_fe': functools.partial(du, iron=True),
}


def get_potential(name: str, **kwargs) -> ClassicalPotential:
    if name not in LIBRARY:
        raise PotentialError(f'unknown classical potential {name!r}; the library has {sorted(LIBRARY)}.')
    return LIBRARY[name](**kwargs)


def table_inconsistent_radii(p: t.Mapping, cutoff: float = 10.0) -> np.ndarray:
    """Radii of the written table where LAMMPS's ``pair_style table`` check warns "force values inconsistent with
    -dE/dr": the tabulated force lies outside both one-sided finite differences of the energy. Expected only at
    inflection points of the potential; a discontinuous splice also shows up at r_s."""
    r = np.linspace(TABLE_R_MIN, cutoff, TABLE_POINTS)
    energy, force = buckingham_src_energy(r, p)
    left = -(energy[1:-1] - energy[:-2]) / (r[1:-1] - r[:-2])
    right = -(energy[2:] - energy[1:-1]) / (r[2:] - r[1:-1])
    inner = force[1:-1]
    flagged = ((inner < left) & (inner < right)) | ((inner > left) & (inner > right))
    return r[1:-1][flagged]


def src_continuity(p: t.Mapping) -> dict:
    """Jumps of energy (eV) and force (eV/Å) at r_s for a Du-type pair: a check that the splice is continuous."""
    eps = 1e-9
    e, f = buckingham_src_energy(np.array([p['r_s'] - eps, p['r_s'] + eps]), p)
    return {'energy_jump': float(e[1] - e[0]), 'force_jump': float(f[1] - f[0]),
            'relative_energy_jump': float(abs(e[1] - e[0]) / max(abs(e[1]), 1e-12)) if math.isfinite(e[1]) else None}

"""Glass analysis library: pure numpy/scipy (no AiiDA imports), working on ASE ``Atoms`` or arrays.

Structure half: :mod:`.io` (readers), :mod:`.neighbors`, :mod:`.structure`, :mod:`.scattering`, :mod:`.rings`.
Dynamics half: :mod:`.dynamics`. See ``docs/analysis_structure.md``.
"""

from .errors import AnalysisInputError, NonPeriodicCellError, TrajectoryMismatchError, UnknownAtomTypeError
from .io import detect_format, iter_lammps_dump, iter_trajectory, read_lammps_data, read_structure
from .neighbors import PairList, minimum_image, neighbor_pairs, perpendicular_widths, require_periodic
from .rings import RingResult, guttman_rings, ring_centre_rdf
from .scattering import (
    neutron_structure_factor,
    partial_structure_factors,
    real_space_functions,
    r_chi,
    xray_form_factor,
    xray_structure_factor,
)
from .structure import (
    RDF,
    THESIS_PBE0_V_BINS,
    BondGraph,
    analyse_structure,
    bond_angle_distribution,
    bond_angles,
    bond_graph,
    bridging_statistics,
    compute_rdf,
    coordination_distribution,
    coordination_numbers,
    default_cutoffs,
    density,
    edge_sharing,
    first_minimum,
    former_former_bonds,
    oxidation_states_from_magmoms,
    pair_key,
    qn_speciation,
    tetrahedral_order,
)

__all__ = (
    'RDF',
    'THESIS_PBE0_V_BINS',
    'AnalysisInputError',
    'BondGraph',
    'NonPeriodicCellError',
    'PairList',
    'RingResult',
    'TrajectoryMismatchError',
    'UnknownAtomTypeError',
    'analyse_structure',
    'bond_angle_distribution',
    'bond_angles',
    'bond_graph',
    'bridging_statistics',
    'compute_rdf',
    'coordination_distribution',
    'coordination_numbers',
    'default_cutoffs',
    'density',
    'detect_format',
    'edge_sharing',
    'first_minimum',
    'former_former_bonds',
    'guttman_rings',
    'iter_lammps_dump',
    'iter_trajectory',
    'minimum_image',
    'neighbor_pairs',
    'neutron_structure_factor',
    'oxidation_states_from_magmoms',
    'pair_key',
    'partial_structure_factors',
    'perpendicular_widths',
    'qn_speciation',
    'r_chi',
    'read_lammps_data',
    'read_structure',
    'real_space_functions',
    'require_periodic',
    'ring_centre_rdf',
    'tetrahedral_order',
    'xray_form_factor',
    'xray_structure_factor',
)

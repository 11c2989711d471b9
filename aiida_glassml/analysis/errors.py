"""Exceptions of the analysis library. All are ``ValueError`` subclasses, so callers that only catch ``ValueError``
still see them; each message names the problem and the fix."""


class AnalysisInputError(ValueError):
    """Input that the analysis cannot work on."""


class NonPeriodicCellError(AnalysisInputError):
    """A periodic cell is required (neighbour lists, g(r), rings) but the structure is not periodic in 3D."""


class UnknownAtomTypeError(AnalysisInputError):
    """LAMMPS atom types cannot be mapped to elements (no Masses, no element column, no explicit map)."""


class TrajectoryMismatchError(AnalysisInputError):
    """Frames of a trajectory differ in atom count or atom order."""

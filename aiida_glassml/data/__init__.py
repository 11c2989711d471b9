"""Provenance data types of aiida-glassml."""

from .ace_potential import AcePotentialData
from .training_set import TrainingSetData

__all__ = ('AcePotentialData', 'TrainingSetData')

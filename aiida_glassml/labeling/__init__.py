"""DFT labelling, pure part (no AiiDA): input builders for CP2K, Quantum ESPRESSO and VASP, validation of labelling
settings, and extraction of labelled frames (eV, Å, eV/Å, eV/Å³, μB) from their outputs.

The AiiDA layer is :mod:`aiida_glassml.workflows.label`.
"""

from .errors import LabelingInputError

__all__ = ('LabelingInputError',)

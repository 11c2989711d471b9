"""aiida-glassml: an AiiDA plugin suite for ACE machine-learning potentials of glassy battery materials."""

__version__ = '0.1.0'

"""Errors of the labelling layer."""


class LabelingInputError(ValueError):
    """Labelling settings or structures that cannot work; the message names the problem and the fix."""

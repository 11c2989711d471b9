"""Headless matplotlib for every figure the package draws (PNG bytes, no screen needed). No AiiDA imports."""

from __future__ import annotations

import io


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, so figures work on clusters and in CI."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def png_bytes(figure, dpi: int = 120, tight: bool = True) -> bytes:
    """Render ``figure`` to PNG bytes and close it (pyplot keeps every open figure alive otherwise)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=dpi, **({'bbox_inches': 'tight'} if tight else {}))
    pyplot().close(figure)
    return buffer.getvalue()

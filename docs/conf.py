"""Sphinx configuration (MyST markdown). Built by `make docs` with warnings treated as errors."""

project = 'aiida-glassml'
author = 'The aiida-glassml developers'
copyright = '2026, The aiida-glassml developers'
release = '0.1.0'
extensions = ['myst_parser']
source_suffix = {'.md': 'markdown'}
myst_enable_extensions = ['colon_fence', 'dollarmath']
myst_heading_anchors = 3
exclude_patterns = ['_build']
html_theme = 'alabaster'
suppress_warnings = ['myst.header']

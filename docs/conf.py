"""Sphinx configuration for the anyposixmq documentation."""

from __future__ import annotations

import anyposixmq

project = "anyposixmq"
author = "The anyposixmq developers"
copyright = "2026, The anyposixmq developers"
release = anyposixmq.__version__
version = release

extensions = ["sphinx.ext.autodoc"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"anyposixmq {release}"
exclude_patterns = ["_build"]
nitpicky = False

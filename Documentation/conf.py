# SPDX-License-Identifier: GPL-2.0
#
# Minimal Sphinx configuration for the project's documentation:
#   python3 -m sphinx -W -b html Documentation <outdir>

project = "rust-klp-shadow"
copyright = "rust-klp-shadow developers"
extensions = []
master_doc = "index"
exclude_patterns = ["_build"]
highlight_language = "none"
html_theme = "alabaster"

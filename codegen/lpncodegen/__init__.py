"""lpncodegen: fixed-point C learners generated from LPN models, and the desktop harness that runs them.

`generate(model, out_dir, prefix)` writes `<prefix>.h` and `<prefix>.c` for a
`lpn.fixed.FixedLPN`; they build against the portable core in
`firmware/lib/lpn_core`. `lpncodegen.harness.CompiledLearner` compiles them for
the desktop through cffi and offers the estimator methods of the Python model.
"""
from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("lpn-edge")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from .generator import generate, render  # noqa: E402
from .model_view import CodegenError  # noqa: E402

__all__ = ["generate", "render", "CodegenError", "__version__"]

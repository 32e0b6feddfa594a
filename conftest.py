"""pytest setup shared by the unit tests and nbval.

- Notebooks run on the small `ci` profile unless FACEKIT_PROFILE says otherwise.
- ``FACEKIT_LIVE=0``: live plots (`facekit.plots.LivePlot`) draw nothing, so nbval sees the same
  outputs on every run; the kernels nbval starts inherit this environment.
- facekit is imported first, so TensorFlow's C++ start-up notices stay off stderr here too
  (`facekit._quiet`). nbval compares stderr like any other output: a fresh run prints none.
"""

import os

os.environ.setdefault("FACEKIT_PROFILE", "ci")
os.environ.setdefault("FACEKIT_LIVE", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import facekit  # noqa: E402,F401  (before anything imports TensorFlow)

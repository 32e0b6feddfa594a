"""pytest setup shared by the unit tests and nbval.

- Notebooks run on the small `ci` profile unless FACEKIT_PROFILE says otherwise.
- stderr is not compared by nbval: TensorFlow's C++ runtime writes start-up notices (CUDA,
  oneDNN) to stderr at moments that differ between runs. nbval 0.11 has no option for that, so
  'stderr' is added to the output keys it skips; stdout and results are compared as usual.
"""

import os

os.environ.setdefault("FACEKIT_PROFILE", "ci")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    from nbval.plugin import IPyNbFile
except ImportError:  # nbval not installed: unit tests only
    IPyNbFile = None

if IPyNbFile is not None and not getattr(IPyNbFile, "_facekit_patched", False):
    _init = IPyNbFile.__init__

    def _init_skip_stderr(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self.skip_compare = (*self.skip_compare, "stderr")

    IPyNbFile.__init__ = _init_skip_stderr
    IPyNbFile._facekit_patched = True

"""facekit: "My CNN seems to be randomly guessing" — reproduce, diagnose and fix it.

Modules: data (loading, caches), synthetic (built-in faces), models, train, diagnose
(+ callbacks), generalize (chapter 06's recipes), evaluate, plots, profiles, story, exercises,
results (the committed measurements the chapters read), text (the width every printed line
fits), cli. Import what you need:
``from facekit.data import load_folder``.

Importing facekit before TensorFlow keeps TensorFlow's C++ start-up notices off stderr
(see ``facekit._quiet``); ``TF_CPP_MIN_LOG_LEVEL=0`` in the environment shows them all again.
"""

from facekit import _quiet

__version__ = "0.1.0"
__all__ = ["__version__"]

_quiet.install()
_quiet.warn_if_two_opencv_wheels()

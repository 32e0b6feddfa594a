"""facekit: "My CNN seems to be randomly guessing" — reproduce, diagnose and fix it.

Modules: data (loading, caches), synthetic (built-in faces), models, train, diagnose
(+ callbacks), generalize (chapter 05's recipes), evaluate, plots, profiles, story, exercises,
cli. Import what you need: ``from facekit.data import load_folder``.
"""

__version__ = "0.1.0"

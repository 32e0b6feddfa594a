"""Notebooks under pytest/nbval run on the small `ci` profile unless told otherwise."""

import os

os.environ.setdefault("FACEKIT_PROFILE", "ci")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

"""The built-in synthetic faces; the code lives in `facekit.data.synthetic` (this name is kept
because ``from facekit.synthetic import make_faces`` is part of facekit's public API)."""

from facekit.data.synthetic import CLASS_NAMES, HAIR_STYLES, draw_face, make_faces, write_folder

__all__ = ["HAIR_STYLES", "CLASS_NAMES", "make_faces", "draw_face", "write_folder"]

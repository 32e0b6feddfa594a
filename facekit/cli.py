"""Command line: facekit story | synth | doctor (also python -m facekit)."""

from __future__ import annotations

import argparse
import errno
import sys
import time
from pathlib import Path

from facekit.cli_doctor import MAX_CONFIG_BYTES, MAX_MODEL_BYTES, _fail, _words, check_model_archive
from facekit.cli_doctor import add_parser as add_doctor

__all__ = ["main", "build_parser", "check_model_archive", "MAX_CONFIG_BYTES", "MAX_MODEL_BYTES"]


def _synth(args: argparse.Namespace) -> int:
    from facekit.data import write_folder

    if not 16 <= args.size <= 1024:
        return _fail(f"--size {args.size}: choose 16..1024 px (the question used 200)")
    if args.n_per_class < 1:
        return _fail(f"--n-per-class {args.n_per_class}: must be at least 1")
    need = 8 * args.n_per_class * args.size ** 2 * 3
    if need > 8 << 30:
        return _fail(f"--n-per-class {args.n_per_class} at --size {args.size}: {need / 2 ** 30:.0f} GiB "
                     "of images; keep it under 8")
    if not 0 <= args.difficulty <= 1:
        return _fail(f"--difficulty {args.difficulty}: must be between 0 and 1")
    t = time.perf_counter()
    try:
        root = write_folder(args.out, n_per_class=args.n_per_class, size=args.size, seed=args.seed,
                            difficulty=args.difficulty, overwrite=args.overwrite)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            return _fail(f"--out {args.out}: the disk is full ({need / 2 ** 20:,.0f} MiB of pixels "
                         "asked for); nothing was changed there")
        return _fail(f"--out {args.out}: {_words(e)}; nothing was changed there")
    except ValueError as e:
        return _fail(f"--out {args.out}: {e}")
    except KeyboardInterrupt:
        print(f"facekit: interrupted; nothing was changed in {args.out}", file=sys.stderr)
        return 130
    n = 8 * args.n_per_class
    print(f"wrote {n} synthetic faces ({args.size}x{args.size} JPEG, 8 classes x {args.n_per_class}) "
          f"to {root}/<class>/ in {time.perf_counter() - t:.1f} s")
    print(f"load them with: facekit.data.load_folder({str(root)!r}, size={args.size})")
    return 0


def _story(args: argparse.Namespace) -> int:
    from facekit.profiles import get_profile

    try:
        get_profile(args.profile)
    except ValueError as e:
        source = "--profile" if args.profile else "$FACEKIT_PROFILE"
        return _fail(f"{source}: {e}")
    if not args.data.strip():
        return _fail("--data '': give a folder, or 'synthetic'")
    if args.data != "synthetic":
        data = Path(args.data)
        if not data.is_dir():
            return _fail(f"--data {args.data}: " + ("is a file; give a folder" if data.exists() else
                                                    "no such folder") + " (or 'synthetic')")
        try:
            if not any(data.iterdir()):
                return _fail(f"--data {args.data}: the folder is empty")
            from facekit.data import load

            load(data, size=16, per_class=1)  # usable images at all? (one per class is decoded)
        except (OSError, ValueError, MemoryError) as e:
            return _fail(f"--data {args.data}: {_words(e)}")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".facekit-write-test").touch()
        (out / ".facekit-write-test").unlink()
    except OSError as e:
        return _fail(f"--out {args.out}: cannot write there ({e.strerror or e})")
    from facekit.plots.live import TerminalProgress
    from facekit.story import run_story
    from facekit.train import extra_callbacks

    with extra_callbacks(TerminalProgress()):  # a progress bar on a terminal; nothing in a log
        run_story(args.profile, data=args.data, seed=args.seed, out=args.out)
    return 0


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, found {value}")
    return value


def _version() -> str:
    """facekit's version, Keras' and the backend Keras will use ($KERAS_BACKEND, else keras.json),
    read without importing either."""
    import importlib.metadata as md
    import os

    from facekit import __version__

    try:
        keras_version = md.version("keras")
    except md.PackageNotFoundError:
        keras_version = "not installed"
    import json
    from pathlib import Path

    backend = os.environ.get("KERAS_BACKEND")
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    if not backend and config.is_file():
        try:
            backend = json.loads(config.read_text()).get("backend")
        except (OSError, ValueError):
            backend = None
    backend = backend or "tensorflow"
    return f"facekit {__version__} (Keras {keras_version}, backend {backend})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facekit", description=__doc__)
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("story", help="the whole story on the built-in data: stuck -> learns -> verdict")
    s.add_argument("--profile", default=None, help="ci | classroom | full (default $FACEKIT_PROFILE "
                   "or classroom)")
    s.add_argument("--data", default="synthetic", help="'synthetic' (default), a UTKFace folder, or "
                   "a folder laid out as <root>/<class>/<images>")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--out", default="reports", help="folder for the figures (default reports/)")
    s.set_defaults(func=_story)

    s = sub.add_parser("synth", help="write the synthetic faces in the question's folder layout")
    s.add_argument("--out", default="data/TRAINING", help="folder to write (default data/TRAINING)")
    s.add_argument("--n-per-class", type=int, default=100)
    s.add_argument("--size", type=int, default=200)
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--difficulty", type=float, default=0.5)
    s.add_argument("--overwrite", action="store_true", help="replace facekit's class folders in --out")
    s.set_defaults(func=_synth)

    add_doctor(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

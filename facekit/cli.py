"""Command line: ``facekit story | synth | doctor`` (also ``python -m facekit``)."""

from __future__ import annotations

import argparse
import errno
import sys
import time
import zipfile
from pathlib import Path

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


MAX_CONFIG_BYTES = 64 << 20  # a .keras file's config.json / metadata.json, inflated
MAX_MODEL_BYTES = 16 << 30  # all members of a .keras file, inflated


def check_model_archive(path: Path) -> str:
    """Why a ``.keras`` zip may not be opened ("" when it may): its members' inflated sizes, read
    from the zip's directory before Keras parses anything (a zip bomb inflates to gigabytes)."""
    if not zipfile.is_zipfile(path):
        return ""  # .h5 or not a model: Keras says which
    with zipfile.ZipFile(path) as zf:
        members = zf.infolist()
    for m in members:
        if m.filename.endswith(".json") and m.file_size > MAX_CONFIG_BYTES:
            return (f"member {m.filename} inflates to {m.file_size:,} bytes, over the bound of "
                    f"{MAX_CONFIG_BYTES:,} for a model's configuration (a zip bomb?)")
    total = sum(m.file_size for m in members)
    if total > MAX_MODEL_BYTES:
        return (f"its {len(members)} members inflate to {total:,} bytes, over the bound of "
                f"{MAX_MODEL_BYTES:,} (a zip bomb?)")
    return ""


def _words(e: BaseException) -> str:
    """An exception as one line: its message, or its kind when it has none (MemoryError)."""
    if isinstance(e, OSError) and e.strerror and not str(e).startswith("/"):
        return f"{e.strerror}" + (f": {e.filename}" if e.filename else "")
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _fail(message: str) -> int:
    print(f"facekit: {message}", file=sys.stderr)
    return 2


def _doctor(args: argparse.Namespace) -> int:
    """Exit 0 when healthy, 1 with findings, 2 on bad input."""
    import keras

    from facekit.data import load
    from facekit.diagnose import doctor

    path = Path(args.model)
    if args.per_class < 1:
        return _fail(f"--per-class {args.per_class}: must be at least 1")
    if not path.is_file():
        return _fail(f"{path}: no such model file (a .keras file saved with model.save)")
    try:
        if why := check_model_archive(path):
            return _fail(f"{path}: not opened: {why}")
        model = keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001 - any failure to load is bad input, said in one line
        return _fail(f"{path}: could not load a Keras model ({type(e).__name__}: {str(e)[:200]})")
    shape = model.input_shape
    if not (isinstance(shape, tuple) and len(shape) == 4 and shape[1] == shape[2] and shape[3] == 3):
        return _fail(f"{path}: the model takes {shape}; facekit doctor needs square RGB images (N, S, S, 3)")
    if args.data == "synthetic" and (need := 8 * args.per_class * int(shape[1]) ** 2 * 3) > 8 << 30:
        return _fail(f"--per-class {args.per_class} at {shape[1]} px: {need / 2 ** 30:.0f} GiB of "
                     "synthetic images; keep it under 8")
    try:
        ds = load(args.data, size=int(shape[1]), per_class=args.per_class)
    except (OSError, ValueError, MemoryError) as e:
        return _fail(f"--data {args.data}: {_words(e)}")
    classes = int(model.output_shape[-1])
    if ds.n_classes != classes:
        return _fail(f"--data {args.data}: {ds.n_classes} classes ({', '.join(ds.class_names)}) but the "
                     f"model has {classes} outputs")
    print(f"{path.name}: {model.count_params():,} parameters; data: {len(ds)} images of "
          f"{ds.n_classes} classes at {shape[1]} px from {args.data}")
    val = None
    if args.val:
        try:
            val = load(args.val, size=int(shape[1]), per_class=args.per_class)
        except (OSError, ValueError, MemoryError) as e:
            return _fail(f"--val {args.val}: {_words(e)}")
        if val.class_names != ds.class_names:
            return _fail(f"--val {args.val}: classes {', '.join(val.class_names)} differ from the data's "
                         f"{', '.join(ds.class_names)}")
    report = doctor(model, ds, val=val, trials=args.trials)
    print(report)
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facekit", description=__doc__)
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

    s = sub.add_parser("doctor", help="diagnose a saved Keras classifier on a folder of images "
                       "(exit 0 healthy, 1 findings, 2 bad input)")
    s.add_argument("model", help="a model saved with model.save('model.keras')")
    s.add_argument("data", help="'synthetic', a UTKFace folder, or a folder laid out as "
                   "<root>/<class>/<images>")
    s.add_argument("--trials", action="store_true", help="try each candidate fix on a fresh copy "
                   "(a minute or two) and rank the suggestions by the held-out accuracy it reaches")
    s.add_argument("--val", help="a folder of held-out images (same layout and classes as DATA) to judge "
                   "accuracy on in inference mode; default: images of DATA apart from the sample")
    s.add_argument("--per-class", type=int, default=32, help="images per class to sample (default 32)")
    s.set_defaults(func=_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""``facekit doctor MODEL DATA``: the training doctor on a saved model, from the shell.

Reads ``.keras`` and ``.h5`` files (a SavedModel or ``model.export()`` folder gets one line saying
what to do instead), loads the images at the size the model takes, scales them as the model was
trained (``--scale 1/255`` for the question's ``X/255.0``), prints the report or ``--json``.
Exit 0 healthy, 1 findings, 2 bad input (one line on stderr, never a traceback), 3 when the doctor
itself fails (one line; ``FACEKIT_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_parser", "run", "check_model_archive", "parse_scale", "report_json", "MAX_CONFIG_BYTES",
           "MAX_MODEL_BYTES"]

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


def parse_scale(text: str) -> float:
    """``"1/255"``, ``"0.00392"`` or ``"1"`` -> the factor the pixels are multiplied by."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number or a fraction such as 1/255") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number")
    return value


def _fail(message: str, code: int = 2) -> int:
    print(f"facekit: {message}", file=sys.stderr)
    return code


def _words(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror and not str(e).startswith("/"):
        return f"{e.strerror}" + (f": {e.filename}" if e.filename else "")
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _saved_model_folder(path: Path) -> str:
    """What to do with a folder that holds a TensorFlow SavedModel, or "" when it does not."""
    if not (path / "saved_model.pb").exists():
        return ""
    if (path / "keras_metadata.pb").exists():
        return (f"{path} is a Keras 2 SavedModel folder (tf.keras model.save('{path.name}')): Keras 3 cannot "
                "rebuild its layers. In TensorFlow 2.15 or earlier (or with tf_keras), load it and save it "
                "again as model.save('model.h5'); then run facekit doctor on that file")
    return (f"{path} is a TensorFlow SavedModel folder (model.export() or tf.saved_model.save): it keeps "
            "the computation, not the layers, so Keras 3 reloads it for inference only "
            "(keras.layers.TFSMLayer) and the doctor cannot probe or train it. Where the model is built, "
            "run model.save('model.keras') and give facekit doctor that file")


def _load(path: Path) -> tuple[Any, str]:
    """(the Keras model, "") or (None, why not in one line)."""
    import keras

    if path.is_dir():
        return None, (_saved_model_folder(path) or f"{path} is a folder, not a model: give a .keras or "
                      ".h5 file saved with model.save")
    if not path.is_file():
        return None, f"{path}: no such model file (a .keras or .h5 file saved with model.save)"
    try:
        if why := check_model_archive(path):
            return None, f"{path}: not opened: {why}"
        absl = logging.getLogger("absl")  # an .h5 file's "compiled metrics have yet to be built" notice
        level = absl.level
        absl.setLevel(logging.ERROR)
        try:
            return keras.models.load_model(path), ""
        finally:
            absl.setLevel(level)
    except Exception as e:  # noqa: BLE001 - any failure to load is bad input, said in one line
        return None, f"{path}: could not load a Keras model ({type(e).__name__}: {str(e)[:200]})"


def _size(model: Any, args: argparse.Namespace) -> tuple[int, str]:
    """(the image size to load at, "") or (0, why not)."""
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        shape = (None, None, None, 3)  # a subclassed model: it takes what it is given
    if not (len(shape) == 4 and shape[3] in (3, None)):
        return 0, f"the model takes {shape}; facekit doctor feeds RGB images (N, S, S, 3)"
    if shape[1] is not None and shape[1] == shape[2]:
        if args.size and args.size != shape[1]:
            return 0, f"--size {args.size}: the model takes {shape[1]} px images"
        return int(shape[1]), ""
    if shape[1] is None and shape[2] is None:
        if not args.size:
            return 0, "the model takes images of any size: give the size it was trained at with --size"
        return args.size, ""
    return 0, f"the model takes {shape}; facekit doctor feeds square images (N, S, S, 3)"


def _data(args: argparse.Namespace, size: int) -> tuple[Any, Any, str]:
    """(data, val, "") or (None, None, why not) - images loaded at ``size`` and scaled."""
    from facekit.data import load

    if args.data == "synthetic" and (need := 8 * args.per_class * size ** 2 * 3) > 8 << 30:
        return None, None, (f"--per-class {args.per_class} at {size} px: {need / 2 ** 30:.0f} GiB of "
                            "synthetic images; keep it under 8")
    try:
        ds = load(args.data, size=size, per_class=args.per_class)
    except (OSError, ValueError, MemoryError) as e:
        return None, None, f"--data {args.data}: {_words(e)}"
    val = None
    if args.val:
        try:
            val = load(args.val, size=size, per_class=args.per_class)
        except (OSError, ValueError, MemoryError) as e:
            return None, None, f"--val {args.val}: {_words(e)}"
        if val.class_names != ds.class_names:
            return None, None, (f"--val {args.val}: classes {', '.join(val.class_names)} differ from the "
                                f"data's {', '.join(ds.class_names)}")
    return ds, val, ""


def _scaled(ds: Any, scale: float | None) -> Any:
    """(images, labels) as the model was trained on them: uint8 pixels, or float32 x ``scale``."""
    if ds is None:
        return None
    if scale is None:
        return ds
    return (ds.images.astype(np.float32) * np.float32(scale), ds.labels)


def _jsonable(v: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, int | str | bool) or v is None:
        return v
    return str(v)


def report_json(report: Any, model_path: str, data: str) -> dict[str, Any]:
    """The doctor's `Report` as plain JSON types (NaN and infinity as null)."""
    from facekit import __version__

    return _jsonable({
        "facekit": __version__, "model": model_path, "data": data, "model_name": report.model_name,
        "ok": report.ok, "first_step": report.first_step, "top_fix": report.top_fix,
        "checks": [{"name": c.name, "ok": c.ok, "verdict": c.verdict, "values": c.values}
                   for c in report.checks],
        "dying_layers": report.dying_layers, "suggestions": report.suggestions, "rules": report.rules,
        "trials": [{**_jsonable(t), "tried": t.tried} for t in report.trials],
        "asked_steps": report.asked_steps, "budget": report.budget})


def run(args: argparse.Namespace) -> int:
    """Exit 0 when healthy, 1 with findings, 2 on bad input, 3 when the doctor fails."""
    if args.per_class < 1:
        return _fail(f"--per-class {args.per_class}: must be at least 1")
    model, why = _load(Path(args.model))
    if model is None:
        return _fail(why)
    size, why = _size(model, args)
    if not size:
        return _fail(f"{args.model}: {why}")
    ds, val, why = _data(args, size)
    if ds is None:
        return _fail(why)
    try:
        classes = model.output_shape[-1]
    except (AttributeError, ValueError, TypeError):
        classes = None  # a subclassed model, or several outputs: the doctor says what it examines
    if isinstance(classes, int) and classes > 1 and ds.n_classes != classes:
        return _fail(f"--data {args.data}: {ds.n_classes} classes ({', '.join(ds.class_names)}) but the "
                     f"model has {classes} outputs")
    from facekit.diagnose import doctor
    from facekit.diagnose.intake import NotDiagnosable

    pixels = "0-255 uint8 pixels" if args.scale is None else f"pixels x {args.scale:.6g} (float32)"
    if not args.json:
        print(f"{Path(args.model).name}: {model.count_params():,} parameters; data: {len(ds)} images of "
              f"{ds.n_classes} classes at {size} px from {args.data}, fed as {pixels}")
    try:
        report = doctor(model, _scaled(ds, args.scale), val=_scaled(val, args.scale), sweep=args.sweep,
                        trials=args.trials, trial_steps=args.steps, seed=args.seed,
                        budget=args.budget or None)
    except NotDiagnosable as e:
        return _fail(f"{args.model}: {e}")
    except ValueError as e:
        return _fail(f"{args.model} on {args.data}: {_words(e)}")
    except Exception as e:  # noqa: BLE001 - one line, not a traceback; FACEKIT_DEBUG=1 shows it
        if os.environ.get("FACEKIT_DEBUG"):
            raise
        return _fail(f"the doctor failed on {args.model} ({type(e).__name__}: {_words(e)[:200]}); "
                     "FACEKIT_DEBUG=1 shows where", 3)
    if args.json:
        print(json.dumps(report_json(report, args.model, args.data), indent=1, allow_nan=False))
    else:
        print(report)
    return 0 if report.ok else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, found {value}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, found {value}")
    return value


def add_parser(sub: Any) -> None:
    """The ``doctor`` subcommand on ``sub`` (argparse's subparsers)."""
    s = sub.add_parser("doctor", help="diagnose a saved Keras classifier on a folder of images "
                       "(exit 0 healthy, 1 findings, 2 bad input)",
                       description=__doc__.split("\n\n")[1].replace("``", "'"))
    s.add_argument("model", help="a model saved with model.save('model.keras') (or .h5)")
    s.add_argument("data", help="'synthetic', a UTKFace folder, or a folder laid out as "
                   "<root>/<class>/<images>")
    s.add_argument("--scale", type=parse_scale, default=None, help="multiply the 0-255 pixels by this "
                   "before the model sees them, as in training (e.g. 1/255 for X/255.0); default: "
                   "uint8 pixels as they are")
    s.add_argument("--val", help="a folder of held-out images (same layout and classes as DATA) to judge "
                   "accuracy on in inference mode; default: images of DATA apart from the sample")
    s.add_argument("--trials", action="store_true", help="try each candidate fix on a fresh copy "
                   "and rank the suggestions by the held-out accuracy it reaches")
    s.add_argument("--steps", type=_positive, default=100, help="training steps per trial, at most "
                   "(default 100)")
    s.add_argument("--budget", type=float, default=60.0, help="seconds for the whole doctor (default 60): "
                   "the trials share what the checks leave, each at least 10 steps and at most --steps; "
                   "0: no limit")
    s.add_argument("--sweep", action="store_true", help="add the learning-rate sweep")
    s.add_argument("--seed", type=_seed, default=0, help="draws the trials' weights, images and batches")
    s.add_argument("--size", type=_positive, default=None, help="image size for a model that takes any "
                   "size (None, None, 3)")
    s.add_argument("--per-class", type=int, default=32, help="images per class to sample (default 32)")
    s.add_argument("--json", action="store_true", help="print the report as JSON (nothing else on stdout)")
    s.set_defaults(func=run)

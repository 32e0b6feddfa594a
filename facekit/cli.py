"""Command line: ``facekit story | synth`` (also ``python -m facekit``)."""

from __future__ import annotations

import argparse
import os
import sys
import time


def _synth(args: argparse.Namespace) -> int:
    from facekit.data import write_folder

    t = time.perf_counter()
    root = write_folder(args.out, n_per_class=args.n_per_class, size=args.size, seed=args.seed,
                        difficulty=args.difficulty)
    n = 8 * args.n_per_class
    print(f"wrote {n} synthetic faces ({args.size}x{args.size} JPEG, 8 classes x {args.n_per_class}) "
          f"to {root}/<class>/ in {time.perf_counter() - t:.1f} s")
    print(f"load them with: facekit.data.load_folder({str(root)!r}, size={args.size})")
    return 0


def _story(args: argparse.Namespace) -> int:
    from facekit.story import run_story

    run_story(args.profile, data=args.data, seed=args.seed, out=args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facekit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("story", help="the whole story on the built-in data: stuck -> learns -> verdict")
    s.add_argument("--profile", default=None, help="ci | classroom | full (default $FACEKIT_PROFILE "
                   "or classroom)")
    s.add_argument("--data", default="synthetic", help="'synthetic' (default), a UTKFace folder, or "
                   "a folder laid out as <root>/<class>/<images>")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="reports", help="folder for the figures (default reports/)")
    s.set_defaults(func=_story)

    s = sub.add_parser("synth", help="write the synthetic faces in the question's folder layout")
    s.add_argument("--out", default="data/TRAINING", help="folder to write (default data/TRAINING)")
    s.add_argument("--n-per-class", type=int, default=100)
    s.add_argument("--size", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--difficulty", type=float, default=0.5)
    s.set_defaults(func=_synth)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

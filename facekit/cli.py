"""Command line: ``facekit story | synth`` (also ``python -m facekit``)."""

from __future__ import annotations

import argparse
import sys
import time


def _synth(args: argparse.Namespace) -> int:
    from facekit.synthetic import write_folder

    t = time.perf_counter()
    root = write_folder(args.out, n_per_class=args.n_per_class, size=args.size, seed=args.seed,
                        difficulty=args.difficulty)
    n = 8 * args.n_per_class
    print(f"wrote {n} synthetic faces ({args.size}x{args.size} JPEG, 8 classes x {args.n_per_class}) "
          f"to {root}/<class>/ in {time.perf_counter() - t:.1f} s")
    print(f"load them with: facekit.data.load_folder({str(root)!r}, size={args.size})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facekit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write the synthetic faces in the question's folder layout")
    s.add_argument("--out", default="data/TRAINING", help="folder to write (default data/TRAINING)")
    s.add_argument("--n-per-class", type=int, default=100)
    s.add_argument("--size", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--difficulty", type=float, default=0.5)
    s.set_defaults(func=_synth)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

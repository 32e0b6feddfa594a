"""Overhead of facekit's training callbacks at their default sampling (every 10 batches).

    python -m benchmarks.callbacks [--profile classroom] [--epochs 2] [--repeats 3]

Trains the question's network of the profile with no callback, with ActivationStats, with
GradientStats and with both (+ ChanceAlarm); reports the fastest and the median seconds per epoch and
the overhead by each. When the medians disagree with the fastest epochs the noise is larger than the
effect, and the table says only that the overhead was not resolved.
"""

from __future__ import annotations

import argparse
import statistics


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--profile", default="classroom")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    from facekit.diagnose import ActivationStats, ChanceAlarm, GradientStats
    from facekit.models import question_model
    from facekit.profiles import get_profile, load_profile_data
    from facekit.text import markdown_table
    from facekit.train import fit

    prof = get_profile(args.profile)
    train, val = load_profile_data(prof)
    xp, yp = train.images[:16], train.labels[:16]
    setups = {
        "none": lambda: [],
        "ActivationStats": lambda: [ActivationStats(xp)],
        "GradientStats": lambda: [GradientStats(xp, yp)],
        "all three": lambda: [ActivationStats(xp), GradientStats(xp, yp), ChanceAlarm(verbose=False)],
    }
    times: dict[str, list[float]] = {k: [] for k in setups}
    for _ in range(args.repeats):
        for name, make in setups.items():
            model = question_model(prof.input_shape, train.n_classes, prof.filters, seed=0)
            h = fit(model, train, val, epochs=args.epochs, seed=0, callbacks=make())
            times[name] += [e["seconds"] for e in h.epochs[1:] or h.epochs]
    base_min, base_med = min(times["none"]), statistics.median(times["none"])
    print(f"profile {prof.name}: {len(train)} training images, batch {prof.batch_size}, "
          f"{args.repeats} runs x {args.epochs} epochs (epoch 1 excluded: tracing). If the median "
          "column has a callback faster than none, the machine's noise exceeded the overhead: read "
          "the fastest epochs as a rough estimate, not a measurement")
    rows = []
    for name, ts in times.items():
        lo, med = min(ts), statistics.median(ts)
        rows.append([name, f"{lo:.2f}", f"{100 * (lo / base_min - 1):+.0f}%", f"{med:.2f}",
                     f"{100 * (med / base_med - 1):+.0f}%"])
    print(markdown_table(["callbacks", "fastest s/epoch", "overhead", "median s/epoch", "overhead"], rows))


if __name__ == "__main__":
    main()

"""One training configuration of the answer's network at 200 px, timed in its own process.

    python -m benchmarks.step --batch 16 --jit 1 --spe 1 --images 800 --repeat 2

Prints one JSON line: samples/s of one epoch (after a warm-up on two shuffled executions that
pays for tracing and XLA compilation), the first batches' losses of each repeat (same seed: are they the
same numbers?), and the settings. ``--determinism 1`` calls
`tf.config.experimental.enable_op_determinism()` first, as `facekit.train.fit` does (Keras then
refuses ``jit_compile=True`` and trains without XLA; the JSON says which ran).
`benchmarks.run` runs the matrix batch 16/64 x XLA off/on x steps_per_execution 1/8.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--jit", type=int, default=0)
    p.add_argument("--spe", type=int, default=1, help="steps_per_execution")
    p.add_argument("--images", type=int, default=800)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--determinism", type=int, default=0)
    args = p.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from facekit.models import answer_model
    from facekit.synthetic import make_faces
    from facekit.train import make_tf_dataset

    if args.determinism:
        tf.config.experimental.enable_op_determinism()
    ds = make_faces(n_per_class=max(1, args.images // 8), size=200, seed=0)
    x, y = ds.images, ds.labels
    out = {"batch": args.batch, "jit": bool(args.jit), "spe": args.spe, "images": len(x),
           "determinism": bool(args.determinism), "samples_s": [], "first_losses": []}
    for _ in range(args.repeat):
        keras.utils.set_random_seed(0)
        model = answer_model((200, 200, 3), 8, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=bool(args.jit), steps_per_execution=args.spe)
        out["jit_ran"] = bool(model.jit_compile)
        data = make_tf_dataset(x, y, args.batch, shuffle=True, seed=0)
        # tracing (and XLA compilation) paid here, on shuffled batches (the first sorted ones are
        # all one class: training on them alone sent the loss to ~80)
        model.fit(data.take(2 * args.spe), epochs=1, verbose=0)
        losses: list[float] = []
        def keep(batch: int, logs: dict) -> None:
            if len(losses) < 5:
                losses.append(float(logs["loss"]))

        record = keras.callbacks.LambdaCallback(on_train_batch_end=keep)
        t = time.perf_counter()
        model.fit(data, epochs=1, verbose=0, callbacks=[record])
        out["samples_s"].append(len(x) / (time.perf_counter() - t))
        out["first_losses"].append(losses)
    out["same_numbers"] = all(np.array_equal(out["first_losses"][0], r) for r in out["first_losses"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Why facekit's datasets turn tf.data autotuning off: the wait at the end of every epoch.

    python -m benchmarks.autotune [--images 96] [--epochs 6] [--repeats 2]

Trains the answer's network at 200 px on the same shuffled uint8 batches with tf.data autotuning
on (TensorFlow's default, and what Keras' own array input uses) and off (`facekit.train`), one
process each, and records every epoch's wall time: from the start of one epoch to the start of
the next (the last one to the end of `fit`), so the time Keras spends destroying the epoch's
iterator is counted. With autotuning on, that destruction waits for the autotune thread's next
wake-up, 10 ms after the iterator began and doubling (at 10, 30, 70, ..., 5,110, 10,230, 20,470,
40,950 ms), so an epoch is stretched towards the next of those marks. Writes `results/autotune.md`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import json, sys, time
import keras, numpy as np, tensorflow as tf
from facekit.models import answer_model
from facekit.synthetic import make_faces
from facekit.train import make_tf_dataset
autotune, images, epochs = sys.argv[1] == "on", int(sys.argv[2]), int(sys.argv[3])
faces = make_faces(n_per_class=images // 8, size=200, seed=0)
data = make_tf_dataset(faces.images, faces.labels, 16, shuffle=True, seed=0)
if autotune:
    options = tf.data.Options()
    options.autotune.enabled = True
    data = data.with_options(options)
model = answer_model((200, 200, 3), 8, seed=0)
model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
starts = []
mark = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: starts.append(time.perf_counter()))
model.fit(data, epochs=epochs, verbose=0, callbacks=[mark])
starts.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(starts, starts[1:])]))
"""


def main(argv: list[str] | None = None) -> int:
    from facekit.text import markdown_table

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=str(HERE / "results" / "autotune.md"))
    args = p.parse_args(argv)
    epochs: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(args.repeats):
        for which in epochs:
            out = subprocess.run([sys.executable, "-c", CHILD, which, str(args.images), str(args.epochs)],
                                 capture_output=True, text=True, check=True)
            times = json.loads(out.stdout.strip().splitlines()[-1])
            print(which, [round(t, 2) for t in times], flush=True)
            epochs[which] += times[1:]  # the first epoch pays for tracing
    table = markdown_table(["tf.data autotuning", "epochs", "median (s)", "fastest (s)", "slowest (s)"],
                           [[which, len(times), f"{statistics.median(times):.2f}", f"{min(times):.2f}",
                             f"{max(times):.2f}"] for which, times in epochs.items()])
    ratio = statistics.median(epochs["on"]) / statistics.median(epochs["off"])
    text = (f"# tf.data autotuning and the end of an epoch\n\n`python -m benchmarks.autotune --images "
            f"{args.images} --epochs {args.epochs} --repeats {args.repeats}`: the answer's network at "
            f"200 px, batch 16, {args.images} images, {args.repeats} processes each way, every epoch after "
            f"the first. Median epoch with autotuning on / off: {ratio:.2f}x.\n\n" + table + "\n")
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

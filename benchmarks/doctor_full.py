"""`facekit doctor --scale 1/255 --trials` on the student's own kind of model at the question's size.

    python -m benchmarks.doctor_full          # -> benchmarks/results/doctor_full.md (~10 min on 2 cores)

The question's network as the question wrote it (Sequential, 200 px, 256 filters, no Rescaling layer:
the pixels are divided by 255 outside the model), trained with Adam 1e-3 on ``X / 255.0`` for
``--steps`` steps of 16 synthetic faces, saved as ``.keras``; then the shell command a student runs on
it, with ``--json``, timed from start to exit in its own process; the JSON parsed into the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "doctor_full.md"


def student_model(size: int = 200, filters: int = 256):
    """The seed question's network, layer for layer, in Keras 3 form (keras.Input, no Rescaling)."""
    import keras
    from keras import layers

    convs = [1, 3, 2, 2, 2]  # convolutions before each pooling, as in the question
    stack: list = [keras.Input((size, size, 3))]
    for block, n in enumerate(convs):
        stack += [layers.Conv2D(filters, 2, activation="relu") for _ in range(n)]
        stack += [layers.Dropout(0.4)] if block >= 2 else []
        stack.append(layers.MaxPooling2D(2))
    stack += [layers.Flatten(), layers.Dense(8, activation="softmax")]
    model = keras.Sequential(stack, name="student_question_net")
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
                  metrics=["accuracy"])
    return model


def train_and_save(path: Path, steps: int, size: int, seed: int = 0) -> dict:
    import numpy as np

    from facekit.data import make_faces
    from facekit.train import set_seed

    set_seed(seed)
    data = make_faces(max(steps * 16 // 8, 16), size, seed=seed)
    x = data.images.astype("float32") / 255.0  # as the question did, outside the model
    model = student_model(size)
    order = np.random.default_rng(seed).permutation(len(x))
    t = time.perf_counter()
    losses = []
    for i in range(steps):
        idx = order[(i * 16) % len(x):][:16]
        losses.append(float(np.ravel(model.train_on_batch(x[idx], data.labels[idx]))[0]))
    model.save(path)
    return {"steps": steps, "train_s": time.perf_counter() - t, "loss_first": losses[0],
            "loss_last": losses[-1], "params": model.count_params(), "images": len(x)}


def doctor_cli(path: Path, *extra: str) -> tuple[float, int, str]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "facekit", "doctor", str(path), "synthetic", "--scale",
                          "1/255", "--trials", *extra], capture_output=True, text=True)
    return time.perf_counter() - t, out.returncode, out.stdout + out.stderr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="training steps before saving (batches of 16)")
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--model", default="/tmp/facekit_student_question.keras")
    args = p.parse_args(argv)
    path = Path(args.model)
    trained = train_and_save(path, args.steps, args.size)
    seconds, rc, raw = doctor_cli(path, "--json")
    report = json.loads(raw[raw.index("{"):])
    checks = [f"- [{'ok' if c['ok'] else '!!'}] {c['name']}: {c['verdict']}" for c in report["checks"]]
    trials = [f"| {t['fix']} | {len(t['losses'])} | {t['seconds']:.0f} s | {t['val_accuracy']:.2f} |"
              for t in report["trials"] if t["tried"]]
    lines = [__doc__.splitlines()[0], "",
             f"Regenerate: `python -m benchmarks.doctor_full` ({platform.machine()}, "
             f"{os.cpu_count()} CPUs).", "",
             f"The model: {trained['params']:,} parameters, trained {trained['steps']} steps of 16 on "
             f"X / 255.0 ({trained['images']} synthetic faces at {args.size} px; loss "
             f"{trained['loss_first']:.3f} -> {trained['loss_last']:.3f}; {trained['train_s']:.0f} s).",
             "",
             "`facekit doctor MODEL synthetic --scale 1/255 --trials --json`: "
             f"**{seconds:.0f} s** from start to exit (budget {report['budget']:g} s; a trial was asked "
             f"{report['asked_steps']} steps), exit {rc}; the JSON parses. First step: "
             f"{report['first_step']}; top fix: {report['top_fix']}.", "",
             "The checks:", "", *checks, "", "| trial | steps | training time | held-out accuracy |",
             "|---|---|---|---|", *trials, "", "Suggestions, in order:", "",
             *[f"{i}. {s}" for i, s in enumerate(report["suggestions"], 1)], ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

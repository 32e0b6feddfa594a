"""Is the classroom profile's mechanism the seed's own? The doctor's at-init probes on the
question's network at its exact size (200 px, 256 filters) next to the ci and classroom sizes.

    python -m benchmarks.full_size            # -> benchmarks/results/full_size.md
    python -m benchmarks.full_size --train-probe   # + a short training probe at 200 px, batch 4

At-init measurements only, with small batches: a batch of 32 images forward and backward at
200 px and 256 filters needs more than 24 GB on a CPU. Each profile's network is measured on
synthetic faces at its own size (seed 0 weights): loss vs ln 8, logit spread across images, signal
RMS first conv -> last conv, the largest dead-channel share, gradient norm conv1 vs output.

``--train-probe``: the question's network at 200 px and 256 filters (seed 0 weights), trained with
Adam at 1e-3 and, from the same weights, at 1e-4, in batches of 4 drawn from 64 synthetic faces;
every few steps, on a fixed probe of 16 images: the dead-channel share of the deep layers
(conv7-conv10, as in the mechanism study), their mean bias and the logit spread. Appended to the
results file as a second table (a few minutes on 2 cores).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "full_size.md"


def measure(size: int, filters: int, seed: int = 0) -> dict[str, float]:
    from facekit.data import make_faces
    from facekit.diagnose import activation_report, gradient_report, loss_at_init, output_sensitivity
    from facekit.models import question_model

    data = make_faces(8, size, seed=seed)  # 64 images, 8 a class
    model = question_model((size, size, 3), 8, filters, seed=seed)
    t = time.perf_counter()
    loss = loss_at_init(model, data, n=64).values["loss"]
    spread = output_sensitivity(model, data, n=64).values["logit_spread"]
    acts = activation_report(model, data, n=16).values
    grads = {r["layer"]: r["grad_norm"] for r in gradient_report(model, data, n=4).values["layers"]}
    layers = acts["layers"]
    return {"size": size, "filters": filters, "params": model.count_params(), "loss": loss,
            "spread": spread, "rms_first": layers[0].rms, "rms_last": layers[-1].rms,
            "rms_drop": acts["rms_drop"], "max_dead": max(s.dead for s in layers),
            "grad_conv1": grads["conv1"], "grad_output": grads["output"],
            "seconds": time.perf_counter() - t}


def train_probe(lr: float, steps: int = 30, every: int = 5, batch: int = 4, size: int = 200,
                filters: int = 256, seed: int = 0) -> list[dict[str, float]]:
    """Deep dead share, deep mean bias and logit spread every ``every`` steps of Adam at ``lr``."""
    import numpy as np

    from facekit.data import make_faces
    from facekit.diagnose import activation_report, output_sensitivity
    from facekit.models import question_model

    data = make_faces(8, size, seed=seed)
    model = question_model((size, size, 3), 8, filters, seed=seed, learning_rate=lr)
    probe = (data.images[:16], data.labels[:16])
    deep = [f"conv{i}" for i in (7, 8, 9, 10)]
    rng = np.random.default_rng(seed)
    rows = []
    t = time.perf_counter()
    for step in range(steps + 1):
        if step % every == 0:
            layers = {s.name: s for s in activation_report(model, probe, n=16).values["layers"]}
            rows.append({"step": step, "dead": float(np.mean([layers[k].dead for k in deep])),
                         "bias": float(np.mean([np.mean(model.get_layer(k).bias.numpy()) for k in deep])),
                         "spread": output_sensitivity(model, probe, n=16).values["logit_spread"],
                         "seconds": time.perf_counter() - t})
            print(f"lr {lr:g} step {step}: {rows[-1]}", flush=True)
        if step < steps:
            idx = rng.choice(len(data.images), batch, replace=False)
            model.train_on_batch(data.images[idx], data.labels[idx])
    return rows


def probe_table(steps: int = 30) -> str:
    from facekit.text import markdown_table

    runs = {lr: train_probe(lr, steps) for lr in (1e-3, 1e-4)}
    table = markdown_table(
        ["step (batches of 4)", "deep dead share, Adam 1e-3", "1e-4", "deep mean bias, 1e-3", "1e-4",
         "logit spread, 1e-3", "1e-4"],
        [[a["step"], f"{a['dead']:.0%}", f"{b['dead']:.0%}", f"{a['bias']:.5f}", f"{b['bias']:.5f}",
          f"{a['spread']:.2g}", f"{b['spread']:.2g}"] for a, b in zip(runs[1e-3], runs[1e-4])])
    secs = runs[1e-3][-1]["seconds"] + runs[1e-4][-1]["seconds"]
    return ("\n## A short training probe at the question's size\n\nThe question's network at 200 px and 256 "
            "filters (seed 0 weights), Adam at 1e-3 and from the same weights at 1e-4, batches of 4 drawn "
            "from 64 synthetic faces; measured on a fixed probe of 16 images; deep = conv7-conv10 "
            f"({secs:.0f} s for both runs).\n\n" + table + "\n")


def main(argv: list[str] | None = None) -> int:
    import argparse

    from facekit.text import markdown_table

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train-probe", action="store_true", help="add the short training probe at 200 px")
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)
    rows = [measure(100, 32), measure(100, 128), measure(200, 256)]
    names = {32: "ci", 128: "classroom", 256: "full (the question's)"}
    table = markdown_table(
        ["profile", "input", "filters", "params", "loss at init (ln 8 = 2.0794)", "logit spread",
         "RMS conv1 -> conv10", "drop", "max dead share", "gradient norm conv1 / output", "s"],
        [[names[int(r["filters"])], f"{r['size']} px", r["filters"], f"{r['params']:,}", f"{r['loss']:.4f}",
          f"{r['spread']:.2g}", f"{r['rms_first']:.3g} -> {r['rms_last']:.3g}", f"{r['rms_drop']:.0f}x",
          f"{r['max_dead']:.0%}", f"{r['grad_conv1']:.2g} / {r['grad_output']:.2g}", f"{r['seconds']:.0f}"]
         for r in rows])
    title = (__doc__ or "").split("\n\n")[0].replace("\n", " ")
    text = (f"{title}\n\nRegenerate: `python -m benchmarks.full_size` "
            f"({platform.machine()}, {os.cpu_count()} CPUs, seed 0 weights, synthetic faces, "
            "64 images for loss and spread, 16 for activations, 4 for gradients).\n\n"
            + table + "\n")
    if args.train_probe:
        text += probe_table(args.steps)
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

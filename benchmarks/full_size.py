"""Is the classroom profile's mechanism the seed's own? The doctor's at-init probes on the
question's network at its exact size (200 px, 256 filters) next to the ci and classroom sizes.

    python -m benchmarks.full_size            # -> benchmarks/results/full_size.md

At-init measurements only, with small batches: a batch of 32 images forward and backward at
200 px and 256 filters needs more than 24 GB on a CPU. Each profile's network is measured on
synthetic faces at its own size (seed 0 weights): loss vs ln 8, logit spread across images, signal
RMS first conv -> last conv, the largest dead-channel share, gradient norm conv1 vs output.
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


def main() -> int:
    rows = [measure(100, 32), measure(100, 128), measure(200, 256)]
    names = {32: "ci", 128: "classroom", 256: "full (the question's)"}
    out = ["| profile | input | filters | params | loss at init (ln 8 = 2.0794) | logit spread | "
           "RMS conv1 -> conv10 | drop | max dead share | gradient norm conv1 / output | s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {names[int(r['filters'])]} | {r['size']} px | {r['filters']} | {r['params']:,} | "
                   f"{r['loss']:.4f} | {r['spread']:.2g} | {r['rms_first']:.3g} -> {r['rms_last']:.3g} | "
                   f"{r['rms_drop']:.0f}x | {r['max_dead']:.0%} | {r['grad_conv1']:.2g} / "
                   f"{r['grad_output']:.2g} | {r['seconds']:.0f} |")
    title = (__doc__ or "").split("\n\n")[0].replace("\n", " ")
    text = (f"{title}\n\nRegenerate: `python -m benchmarks.full_size` "
            f"({platform.machine()}, {os.cpu_count()} CPUs, seed 0 weights, synthetic faces, "
            "64 images for loss and spread, 16 for activations, 4 for gradients).\n\n"
            + "\n".join(out) + "\n")
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The question's pipeline vs facekit, side by side, in one run on one machine.

    python -m benchmarks.run                 # full size: 5,600 JPEGs at 200 px (about 10 min)
    python -m benchmarks.run --per-class 20 --repeats 1 --train-images 64 --notebooks   # smoke test

1. load: the question's data script (cv2.imread + resize loop, np.array, pickle) vs
   facekit.data.load_folder (+ npz cache); wall time and peak RSS, each run in its own process.
2. ready to train: peak RSS of `pickle.load` + `X/255.0` vs facekit's load_cache + tf.data batch.
3. training throughput of the answer's network at 200 px: `model.fit(X_float64, y, batch_size=16)`
   vs `facekit.train.fit` on uint8, samples/s; and achieved FLOP/s vs a float32 matmul's.
4. the chapters' wall time on the profiles given with --notebooks (default: ci).
Where the time goes (the targets this misses): `python -m benchmarks.profile`.
Writes benchmarks/RESULTS.md (markdown table) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Each child prints one JSON line: {"seconds": ..., "peak_mb": ..., ...}. Peak memory is VmHWM
# (the process's own high-water mark; ru_maxrss would include the parent's RSS from before exec).
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024"
RSS = "int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024"
CHILD = {
    "question_load": """
import pickle, time, json, sys
from facekit.data.question_script import question_data_script
t = time.perf_counter()
X, y, cats = question_data_script(sys.argv[1], 200, 200, per_class=700, verbose=False)
with open(sys.argv[2] + "/X.pickle", "wb") as f: pickle.dump(X, f)
with open(sys.argv[2] + "/y.pickle", "wb") as f: pickle.dump(y, f)
print(json.dumps({"seconds": time.perf_counter() - t, "n": len(X), "array_mb": X.nbytes / 1e6,
                  "peak_mb": PEAK}))
""",
    "facekit_load": """
import time, json, sys
from facekit.data import load_folder, save_cache
t = time.perf_counter()
ds = load_folder(sys.argv[1], size=200, per_class=700, progress=False)
save_cache(ds, sys.argv[2] + "/cache.npz")
print(json.dumps({"seconds": time.perf_counter() - t, "n": len(ds), "array_mb": ds.images.nbytes / 1e6,
                  "peak_mb": PEAK}))
""",
    "question_ready": """
import pickle, time, json, sys
import tensorflow as tf  # the question's model script imports TensorFlow first
BASE = RSS
t = time.perf_counter()
with open(sys.argv[2] + "/X.pickle", "rb") as f: X = pickle.load(f)
X = X/255.0
print(json.dumps({"seconds": time.perf_counter() - t, "dtype": str(X.dtype),
                  "peak_mb": PEAK, "data_mb": PEAK - BASE}))
""",
    "facekit_ready": """
import time, json, sys
from facekit.data import load_cache
from facekit.train import make_tf_dataset
BASE = RSS
t = time.perf_counter()
ds = load_cache(sys.argv[2] + "/cache.npz", size=200)
xb, yb = next(iter(make_tf_dataset(ds.images, ds.labels, 16, shuffle=True)))
print(json.dumps({"seconds": time.perf_counter() - t, "dtype": str(xb.dtype),
                  "peak_mb": PEAK, "data_mb": PEAK - BASE}))
""",
}


def child(name: str, *args: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = CHILD[name].replace("PEAK", f"({PEAK})").replace("BASE = RSS", f"BASE = {RSS}")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def answer_flops(size: int = 200, n_classes: int = 8) -> float:
    """FLOPs of one forward pass of the answer's network (multiply-add = 2)."""
    f, s, c = 0.0, size, 3
    for filters, k in ((16, 5), (32, 3), (64, 3)):
        f += 2 * k * k * c * filters * s * s
        c, s = filters, s // 2
    return f + 2 * s * s * c * 512 + 2 * 512 * n_classes


def matmul_peak(n: int = 4096, repeats: int = 5) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    (a @ b).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        (a @ b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def training(n_images: int, cache_dir: str) -> dict:
    import numpy as np

    from facekit.data import load_cache
    from facekit.models import answer_model
    from facekit.train import fit, set_seed

    ds = load_cache(Path(cache_dir) / "cache.npz")
    idx = np.random.default_rng(0).permutation(len(ds))[:n_images]
    x8, y = ds.images[idx], ds.labels[idx]
    res = {}
    set_seed(0)
    m = answer_model((200, 200, 3), 8, seed=0)  # Rescaling inside: /255 happens twice for float input
    x64 = x8 / 255.0 * 255.0  # the question's float64 array (scaled back so both see the same pixels)
    m.fit(x64[:32], y[:32], batch_size=16, epochs=1, verbose=0)  # warm-up
    t = time.perf_counter()
    m.fit(x64, y, batch_size=16, epochs=1, verbose=0, shuffle=True)
    res["question_samples_s"] = n_images / (time.perf_counter() - t)
    del x64
    m = answer_model((200, 200, 3), 8, seed=0)
    fit(m, (x8[:32], y[:32]), epochs=1, seed=0)  # warm-up
    h = fit(m, (x8, y), epochs=1, seed=0)
    res["facekit_samples_s"] = n_images / h.epochs[0]["seconds"]
    res["train_flop_per_sample"] = 3 * answer_flops()
    res["matmul_flops"] = matmul_peak()
    res["utilisation"] = res["facekit_samples_s"] * res["train_flop_per_sample"] / res["matmul_flops"]
    return res


def notebook_rows(profile: str) -> list[tuple[str, str, str, str]]:
    """Wall time of every chapter on ``profile`` (run in place, nothing written), one row each."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, str(HERE.parent / "notebooks" / "execute.py"), "--profile", profile,
                          "--no-write"], capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    rows = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "s" and parts[0].endswith(".ipynb"):
            rows.append((f"notebook {parts[0]} on {profile} (s)", parts[1], "", ""))
    total = f"{time.perf_counter() - t:.0f}"
    rows.append((f"all chapters on {profile}, kernel starts included (s)", total, "", ""))
    return rows


def fmt(values: list[float], unit: str = "") -> str:
    return f"{statistics.median(values):.1f}{unit} ({min(values):.1f}-{max(values):.1f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--per-class", type=int, default=700)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-images", type=int, default=800)
    p.add_argument("--out", default=str(HERE / "RESULTS.md"))
    p.add_argument("--notebooks", nargs="*", default=["ci"], metavar="PROFILE",
                   help="time the chapters on these profiles (default: ci; classroom takes ~13 min)")
    args = p.parse_args(argv)

    import cv2
    import keras
    import numpy as np
    import tensorflow as tf

    from facekit.synthetic import write_folder

    work = tempfile.mkdtemp(prefix="facekit-bench-")
    t = time.perf_counter()
    root = write_folder(Path(work) / "TRAINING", n_per_class=args.per_class, size=200, seed=0)
    n = 8 * args.per_class
    print(f"wrote {n} JPEGs at 200 px in {time.perf_counter() - t:.1f} s", flush=True)
    runs: dict[str, list[dict]] = {k: [] for k in CHILD}
    for _ in range(args.repeats):
        for name in ("question_load", "facekit_load", "question_ready", "facekit_ready"):
            runs[name].append(child(name, str(root), work))
            print(name, runs[name][-1], flush=True)
    array_mb = runs["facekit_load"][0]["array_mb"]
    sec = {k: [r["seconds"] for r in v] for k, v in runs.items()}
    rss = {k: [r["peak_mb"] for r in v] for k, v in runs.items()}
    train = training(min(args.train_images, n), work)
    print(train, flush=True)

    q_load, f_load = statistics.median(sec["question_load"]), statistics.median(sec["facekit_load"])
    q_ready, f_ready = statistics.median(rss["question_ready"]), statistics.median(rss["facekit_ready"])
    data = {k: [r["data_mb"] for r in runs[k]] for k in ("question_ready", "facekit_ready")}
    q_data, f_data = statistics.median(data["question_ready"]), statistics.median(data["facekit_ready"])
    rows = [
        ("load: question script (s)", fmt(sec["question_load"]), "", ""),
        ("load: facekit load_folder + cache (s)", fmt(sec["facekit_load"]),
         f"{q_load / f_load:.2f}x faster", ">= 3x"),
        ("load: question peak RSS (MB)", fmt(rss["question_load"]), "", ""),
        ("load: facekit peak RSS (MB)", fmt(rss["facekit_load"]),
         f"{statistics.median(rss['facekit_load']) / array_mb:.2f}x the uint8 array ({array_mb:.0f} MB)",
         "<= 1.3x"),
        ("ready to train: question pickle + X/255.0 peak RSS (MB)", fmt(rss["question_ready"]), "", ""),
        ("ready to train: facekit cache + tf.data peak RSS (MB)", fmt(rss["facekit_ready"]),
         f"{q_ready / f_ready:.1f}x less", ">= 6x"),
        ("ready to train, data only (peak - RSS after imports): question (MB)", fmt(data["question_ready"]),
         "", ""),
        ("ready to train, data only (peak - RSS after imports): facekit (MB)", fmt(data["facekit_ready"]),
         f"{q_data / f_data:.1f}x less", ">= 6x"),
        ("train answer net 200 px: model.fit(float64) (samples/s)", f"{train['question_samples_s']:.1f}",
         "", ""),
        ("train answer net 200 px: facekit.train.fit(uint8) (samples/s)", f"{train['facekit_samples_s']:.1f}",
         f"{train['facekit_samples_s'] / train['question_samples_s']:.2f}x", ">= 1.0x"),
        ("achieved FLOP/s / float32 matmul FLOP/s",
         f"{train['facekit_samples_s'] * train['train_flop_per_sample'] / 1e9:.1f} / "
         f"{train['matmul_flops'] / 1e9:.1f} GFLOP/s", f"{train['utilisation']:.0%}", ">= 40%"),
    ]
    for prof in args.notebooks:
        rows += notebook_rows(prof)
    table = ["| measure | median (range) | ratio | target |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    head = (f"# facekit benchmarks\n\nMachine: {platform.machine()}, {os.cpu_count()} CPUs; Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
            f"NumPy {np.__version__}, OpenCV {cv2.__version__}. Data: {n} synthetic JPEGs at 200 px "
            f"(8 classes x {args.per_class}); {args.repeats} runs of each load, each in its own process; "
            f"training on {min(args.train_images, n)} images, one epoch each way.\n"
            f"Command: `python -m benchmarks.run {' '.join(argv or sys.argv[1:])}`\n\n")
    text = head + "\n".join(table) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

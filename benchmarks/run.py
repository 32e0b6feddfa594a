"""The question's pipeline vs facekit, side by side, in one run on one machine.

    python -m benchmarks.run                 # full size: 5,600 JPEGs at 200 px (about 10 min)
    python -m benchmarks.run --per-class 20 --repeats 1 --train-images 64 --notebooks   # smoke test

1. load: the question's data script (cv2.imread + resize loop, np.array, pickle) vs
   facekit.data.load_folder with 1, 2 and all cores' decode threads; the cache write (`save_cache`,
   only when asked) timed apart; wall time and peak RSS, each run in its own process.
2. from cache: the question's `pickle.load` vs `load_cache` (every member's CRC checked) and
   `load_cache(mmap=True)`; ready to train: peak RSS of `pickle.load` + `X/255.0` vs facekit's
   load_cache + tf.data batch.
3. training throughput of the answer's network at 200 px: `model.fit(X_float64, y, batch_size=16)`
   vs `facekit.train.fit` on uint8, samples/s; achieved FLOP/s vs a float32 matmul's; and the
   fused-step matrix (`benchmarks.step`): batch 16/64 x XLA off/on x steps_per_execution 1/8.
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
ds = load_folder(sys.argv[1], size=200, per_class=700, progress=False, workers=int(sys.argv[3]))
seconds = time.perf_counter() - t
peak = PEAK
t = time.perf_counter()
save_cache(ds, sys.argv[2] + "/cache.npz")
print(json.dumps({"seconds": seconds, "n": len(ds), "array_mb": ds.images.nbytes / 1e6,
                  "peak_mb": peak, "cache_seconds": time.perf_counter() - t}))
""",
    "question_unpickle": """
import pickle, time, json, sys
t = time.perf_counter()
with open(sys.argv[2] + "/X.pickle", "rb") as f: X = pickle.load(f)
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": PEAK}))
""",
    "facekit_cache": """
import time, json, sys
from facekit.data import load_cache
t = time.perf_counter()
ds = load_cache(sys.argv[2] + "/cache.npz", size=200, mmap=sys.argv[3] == "mmap")
seconds = time.perf_counter() - t
for i in range(0, len(ds), 256): ds.images[i:i + 256].max()  # then read every image once
print(json.dumps({"seconds": seconds, "read_all_seconds": time.perf_counter() - t, "peak_mb": PEAK}))
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
    t = time.perf_counter()  # wall time of the call, as for the question's fit
    fit(m, (x8, y), epochs=1, seed=0)
    res["facekit_samples_s"] = n_images / (time.perf_counter() - t)
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--per-class", type=int, default=700)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-images", type=int, default=800)
    p.add_argument("--out", default=str(HERE / "RESULTS.md"))
    p.add_argument("--notebooks", nargs="*", default=["ci"], metavar="PROFILE",
                   help="time the chapters on these profiles (default: ci; `--notebooks` alone: none; "
                        "classroom takes ~25 min)")
    p.add_argument("--fused", nargs="*", metavar="BATCH:XLA:SPE",
                   default=[*(f"{b}:{j}:{e}" for b in (16, 64) for j in (0, 1) for e in (1, 8)), "16:1:1:1"],
                   help="training configurations for benchmarks.step; a 4th field 1 turns op determinism on "
                        "(default: 16/64 x XLA 0/1 x spe 1/8, and XLA asked for under determinism)")
    return p.parse_args(argv)


def measure_loads(root: str, work: str, workers: list[int], cores: int,
                  repeats: int) -> dict[str, list[dict]]:
    """Parts 1 and 2: every loading child (`CHILD`) ``repeats`` times, each in its own process; per
    step, one record a run. ``facekit_load`` is the run with ``cores`` decode threads."""
    steps = [("question_load", ()), *[(f"facekit_load_w{w}", (str(w),)) for w in workers],
             ("question_unpickle", ()), ("facekit_cache_full", ("full",)), ("facekit_cache_mmap", ("mmap",)),
             ("question_ready", ()), ("facekit_ready", ())]
    runs: dict[str, list[dict]] = {k: [] for k, _ in steps}
    for _ in range(repeats):
        for name, extra in steps:
            script = next(k for k in CHILD if name.startswith(k))
            runs[name].append(child(script, root, work, *extra))
            print(name, runs[name][-1], flush=True)
    runs["facekit_load"] = runs[f"facekit_load_w{cores}"]
    return runs


def measure_fused(configs: list[str], images: int) -> list[dict]:
    """Part 3's fused-step matrix: one `benchmarks.step` process per BATCH:XLA:SPE[:DETERMINISM]."""
    fused = []
    for config in configs:
        batch, jit, spe, *det = (int(v) for v in config.split(":"))  # BATCH:XLA:SPE[:DETERMINISM]
        out = subprocess.run([sys.executable, "-m", "benchmarks.step", "--batch", str(batch),
                              "--jit", str(jit), "--spe", str(spe),
                              "--images", str(images),
                              "--repeat", "2" if (jit and spe == 1) else "1",
                              "--determinism", str(det[0] if det else 0)],
                             capture_output=True, text=True, check=True, cwd=HERE.parent,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        fused.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print("step", fused[-1], flush=True)
    return fused


def load_rows(runs: dict[str, list[dict]], workers: list[int], cores: int) -> list[tuple[str, str, str, str]]:
    """The table's rows for parts 1 and 2: loading, loading from the cache, ready to train."""
    array_mb = runs["facekit_load"][0]["array_mb"]
    sec = {k: [r["seconds"] for r in v] for k, v in runs.items()}
    rss = {k: [r["peak_mb"] for r in v] for k, v in runs.items()}

    def med(key: str, field: str = "seconds") -> float:
        return statistics.median([r[field] for r in runs[key]])

    q_load, q_unpickle = med("question_load"), med("question_unpickle")
    q_ready, f_ready = med("question_ready", "peak_mb"), med("facekit_ready", "peak_mb")
    data = {k: [r["data_mb"] for r in runs[k]] for k in ("question_ready", "facekit_ready")}
    q_data, f_data = statistics.median(data["question_ready"]), statistics.median(data["facekit_ready"])
    rows = [("load: question script (s)", fmt(sec["question_load"]), "", "")]
    for w in workers:
        rows.append((f"load: facekit load_folder, {w} decode thread{'s' if w > 1 else ''} (s)",
                     fmt(sec[f"facekit_load_w{w}"]), f"{q_load / med(f'facekit_load_w{w}'):.2f}x faster",
                     ">= 1.8x" if w == cores else ""))
    read_all = [r["read_all_seconds"] for r in runs["facekit_cache_mmap"]]
    return rows + [
        ("load: facekit save_cache afterwards, only when asked (s)",
         fmt([r["cache_seconds"] for r in runs["facekit_load"]]), "", ""),
        ("from cache: question pickle.load of X (s)", fmt(sec["question_unpickle"]), "", ""),
        ("from cache: facekit load_cache, CRC of every member checked (s)", fmt(sec["facekit_cache_full"]),
         f"{q_unpickle / med('facekit_cache_full'):.2f}x pickle.load, "
         f"{q_load / med('facekit_cache_full'):.0f}x the question's loop", ">= 1.0x, >= 10x"),
        ("from cache: facekit load_cache(mmap=True) (s)", fmt(sec["facekit_cache_mmap"]),
         f"{q_unpickle / med('facekit_cache_mmap'):.0f}x pickle.load", ">= 1.0x"),
        ("from cache: load_cache(mmap=True), then every image read once (s)", fmt(read_all),
         f"{q_unpickle / statistics.median(read_all):.2f}x pickle.load", ""),
        ("from cache: peak RSS, pickle.load / load_cache / load_cache(mmap=True) all read (MB)",
         f"{med('question_unpickle', 'peak_mb'):.0f} / {med('facekit_cache_full', 'peak_mb'):.0f}"
         f" / {med('facekit_cache_mmap', 'peak_mb'):.0f}", "", ""),
        ("load: question peak RSS (MB)", fmt(rss["question_load"]), "", ""),
        ("load: facekit peak RSS (MB)", fmt(rss["facekit_load"]),
         f"{med('facekit_load', 'peak_mb') / array_mb:.2f}x the uint8 array ({array_mb:.0f} MB)", "<= 1.3x"),
        ("ready to train: question pickle + X/255.0 peak RSS (MB)", fmt(rss["question_ready"]), "", ""),
        ("ready to train: facekit cache + tf.data peak RSS (MB)", fmt(rss["facekit_ready"]),
         f"{q_ready / f_ready:.1f}x less", ">= 6x"),
        ("ready to train, data only (peak - RSS after imports): question (MB)", fmt(data["question_ready"]),
         "", ""),
        ("ready to train, data only (peak - RSS after imports): facekit (MB)", fmt(data["facekit_ready"]),
         f"{q_data / f_data:.1f}x less", ">= 6x"),
    ]


def training_rows(train: dict, fused: list[dict]) -> list[tuple[str, str, str, str]]:
    """The table's rows for part 3: `training`'s throughput and FLOP/s, then the fused-step matrix."""
    rows = [
        ("train answer net 200 px: model.fit(float64) (samples/s)", f"{train['question_samples_s']:.1f}",
         "", ""),
        ("train answer net 200 px: facekit.train.fit(uint8) (samples/s)", f"{train['facekit_samples_s']:.1f}",
         f"{train['facekit_samples_s'] / train['question_samples_s']:.2f}x", ">= 1.5x"),
        ("achieved FLOP/s / float32 matmul FLOP/s",
         f"{train['facekit_samples_s'] * train['train_flop_per_sample'] / 1e9:.1f} / "
         f"{train['matmul_flops'] / 1e9:.1f} GFLOP/s", f"{train['utilisation']:.0%}", ">= 40%"),
    ]
    base = {f["batch"]: statistics.median(f["samples_s"]) for f in fused
            if not f["jit"] and f["spe"] == 1 and not f["determinism"]}
    for f in fused:
        speed = statistics.median(f["samples_s"])
        util = speed * train["train_flop_per_sample"] / train["matmul_flops"]
        same = (f" same seed twice, same losses: {'yes' if f['same_numbers'] else 'no'};"
                if len(f["samples_s"]) > 1 else "")
        asked = (", op determinism on (XLA asked for: Keras refuses it)" if f["determinism"] and f["jit"]
                 and not f["jit_ran"] else ", op determinism on" if f["determinism"] else "")
        rows.append((f"fused step: batch {f['batch']}, XLA {'on' if f['jit_ran'] else 'off'}{asked}, "
                     f"steps_per_execution {f['spe']} (samples/s)", fmt(f["samples_s"]),
                     (f"{speed / base[f['batch']]:.2f}x plain at batch {f['batch']};" if f["batch"] in base
                      else "") + f"{same} "
                     f"{util:.0%} of matmul", ""))
    return rows


def write_results(args: argparse.Namespace, argv: list[str] | None, n: int, versions: str,
                  rows: list[tuple[str, str, str, str]]) -> None:
    """Write the table under its header to ``args.out`` (hand-written notes below it stay); print it."""
    from benchmarks.notes import write_with_notes
    from facekit.text import markdown_table

    table = markdown_table(["measure", "median (range)", "ratio", "target"], rows)
    head = (f"# facekit benchmarks\n\nMachine: {platform.machine()}, {os.cpu_count()} CPUs; Python "
            f"{platform.python_version()}, {versions}. Data: {n} synthetic JPEGs at 200 px "
            f"(8 classes x {args.per_class}); {args.repeats} runs of each load, each in its own process; "
            f"training on {min(args.train_images, n)} images, one epoch each way.\n"
            f"Command: `python -m benchmarks.run {' '.join(argv or sys.argv[1:])}`\n\n")
    write_with_notes(Path(args.out), head.rstrip(), table)  # hand-written notes below stay
    print(Path(args.out).read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

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
    cores = os.cpu_count() or 1
    workers = sorted({1, 2, cores})
    runs = measure_loads(str(root), work, workers, cores, args.repeats)
    train = training(min(args.train_images, n), work)
    print(train, flush=True)
    fused = measure_fused(args.fused, min(args.train_images, n))
    rows = load_rows(runs, workers, cores) + training_rows(train, fused)
    for prof in args.notebooks:
        rows += notebook_rows(prof)
    versions = (f"TensorFlow {tf.__version__}, Keras {keras.__version__}, NumPy {np.__version__}, "
                f"OpenCV {cv2.__version__}")
    write_results(args, argv, n, versions, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

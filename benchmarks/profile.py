"""Where the time goes, for the two targets `benchmarks.run` misses: loading (>= 3x faster) and
training FLOP/s (>= 40% of a float32 matmul). Writes benchmarks/results/profile.md.

    python -m benchmarks.profile                  # about 5 min on 2 CPUs; needs py-spy

1. py-spy (sampling, native frames) over each loader in its own process: share of samples per
   kind of work (JPEG decode, resize, colour conversion, pickling, ...), summed over threads,
   told apart by the source line of the innermost Python frame.
2. Step-time decomposition of that network: the full step, the convolutional part alone
   (Dense(512) replaced by global pooling), and the full step at batch 64 - each with its
   achieved GFLOP/s against a float32 matmul's.
"""

from __future__ import annotations

import argparse
import collections
import linecache
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import CHILD, PEAK, RSS, answer_flops, matmul_peak

HERE = Path(__file__).resolve().parent
PYSPY = str(Path(sys.executable).with_name("py-spy"))

_PY = re.compile(r"^(?P<fn>.*) \((?P<file>[^()]+\.py):(?P<line>\d+)\)$")
LINE_KINDS = [  # (kind, words in the source line of the innermost Python frame)
    ("JPEG decode (cv2.imread / imdecode)", ("imread", "imdecode")),
    ("resize", ("resize",)),
    ("colour conversion", ("cvtcolor",)),
    ("file read", ("fromfile", ".read(")),
    ("checks (signature, truncation)", ("_sniff", "_truncation", "data[-", "rfind", "find(")),
    ("pickle.dump", ("pickle.dump",)),
    ("list -> np.array", ("np.array", "append(")),
    ("npz cache (zip, CRC32)", ("savez", "crc32", "write(", "zip")),
    ("thread pool bookkeeping", ("pool.map", "result(", "_worker", "wait(")),
    ("imports and start-up", ("import ",)),
]


def source_line(file: str, line: int) -> str:
    for root in ["", *sys.path]:
        path = Path(root) / file if root else Path(file)
        if path.is_file():
            return linecache.getline(str(path), line).strip()
    return ""


def classify_load(stack: str) -> str:
    """The kind of work of one sample, from the source line of its innermost Python frame
    (native frames of cv2 and NumPy are stripped of symbols, Python frames are not)."""
    frames = stack.split(";")
    if any("gc_collect" in f for f in frames):
        return "Python garbage collector"
    for f in reversed(frames):
        m = _PY.match(f)
        if not m:
            continue
        if "importlib" in m["file"]:
            return "imports and start-up"
        text = (m["fn"] + " " + source_line(m["file"], int(m["line"]))).lower()
        for kind, words in LINE_KINDS:
            if any(w in text for w in words):
                return kind
        return f"other Python ({m['fn']}, {m['file'].split('/')[-1]}:{m['line']})"
    return "other native"


def spy(code: str, args: list[str], out: Path, rate: int = 200) -> collections.Counter:
    """Run ``python -c code args`` under py-spy; samples per stack (raw format)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([PYSPY, "record", "-r", str(rate), "--native", "--format", "raw", "-o", str(out),
                    "--", sys.executable, "-c", code, *args], check=True, env=env,
                   capture_output=True, text=True)
    counts: collections.Counter = collections.Counter()
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            counts[stack] += int(n)
    return counts


def shares(counts: collections.Counter) -> list[tuple[str, float]]:
    by: collections.Counter = collections.Counter()
    for stack, n in counts.items():
        by[classify_load(stack)] += n
    total = sum(by.values()) or 1
    return [(k, v / total) for k, v in by.most_common()]


def step_decomposition(steps: int = 12) -> list[dict]:
    """Seconds per training step and GFLOP/s for the full network, its conv part, and batch 64."""
    import keras
    import numpy as np

    from facekit.models import answer_model

    rows = []
    conv_flops = answer_flops() - (2 * 25 * 25 * 64 * 512 + 2 * 512 * 8)
    cases = [("answer net, batch 16", dict(), 16, answer_flops()),
             ("conv part only (Dense(512) -> global pooling), batch 16", dict(head="gap"), 16,
              conv_flops + 2 * 64 * 8),
             ("answer net, batch 64", dict(), 64, answer_flops())]
    for name, kw, bs, flops in cases:
        keras.utils.set_random_seed(0)
        m = answer_model((200, 200, 3), 8, **kw)
        x = np.random.default_rng(0).integers(0, 256, (bs, 200, 200, 3), dtype=np.uint8)
        y = np.zeros(bs, np.int64)
        for _ in range(3):
            m.train_on_batch(x, y)
        t = time.perf_counter()
        for _ in range(steps):
            m.train_on_batch(x, y)
        sec = (time.perf_counter() - t) / steps
        rows.append({"case": name, "params": m.count_params(), "ms_per_step": 1000 * sec,
                     "samples_s": bs / sec, "gflops": 3 * flops * bs / sec / 1e9})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--per-class", type=int, default=700)
    p.add_argument("--train-images", type=int, default=256)
    p.add_argument("--out", default=str(HERE / "results" / "profile.md"))
    a = p.parse_args(argv)
    from facekit.synthetic import write_folder
    from facekit.text import markdown_table

    work = Path(tempfile.mkdtemp(prefix="facekit-profile-"))
    root = write_folder(work / "TRAINING", n_per_class=a.per_class, size=200, seed=0)
    lines = ["# Where the time goes (py-spy, native frames)", "",
             f"Command: `python -m benchmarks.profile {' '.join(argv or sys.argv[1:])}`; "
             f"{os.cpu_count()} CPUs. Shares of py-spy samples (200 Hz, all threads, idle excluded).", ""]
    for name in ("question_load", "facekit_load"):
        code = CHILD[name].replace("PEAK", f"({PEAK})").replace("BASE = RSS", f"BASE = {RSS}")
        t = time.perf_counter()
        counts = spy(code, [str(root), str(work)], work / f"{name}.txt")
        wall = time.perf_counter() - t
        lines += [f"## {name} ({8 * a.per_class} JPEGs at 200 px; {wall:.1f} s under py-spy, "
                  f"{sum(counts.values())} samples)", "",
                  markdown_table(["kind of work", "share of samples"],
                                 [[k, f"{v:.0%}"] for k, v in shares(counts) if v >= 0.005])]
        lines += [""]
        print(f"{name} done", flush=True)
    lines += ["## Training", "",
              "py-spy cannot split training time by kernel here: TensorFlow's and oneDNN's shared "
              "libraries ship without symbols, so every native frame is an address inside "
              "`libtensorflow_cc.so`. Instead the step is decomposed by timing variants of the network "
              "(`train_on_batch` on fixed uint8 batches, after 3 warm-up steps, mean of 12):", ""]
    peak = matmul_peak()
    rows = step_decomposition()
    cells = [[r["case"], f"{r['params']:,}", f"{r['ms_per_step']:.0f}", f"{r['samples_s']:.0f}",
              f"{r['gflops']:.0f}", f"{r['gflops'] * 1e9 / peak:.0%}"] for r in rows]
    lines += ["## Step-time decomposition", "",
              f"float32 matmul (4096 x 4096) on this machine: {peak / 1e9:.0f} GFLOP/s.", "",
              markdown_table(["case", "params", "ms/step", "samples/s", "GFLOP/s", "share of matmul peak"],
                             cells)]
    text = "\n".join(lines) + "\n"
    Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

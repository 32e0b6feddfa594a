"""Live progress for a room: `LivePlot`, a callback that redraws the curves while `fit` runs.

In a notebook it draws one figure and updates it in place: the loss of every batch (the true
batch loss, not Keras's running mean) with the validation loss per epoch, and the accuracy per
epoch, against the ln C and 1/C lines. Outside a notebook it prints one line per epoch. With
``FACEKIT_LIVE=0`` in the environment (the tests set it, so nbval sees nothing) it does nothing.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

import keras
import numpy as np

from facekit.plots.curves import finish, loss_accuracy_figure, reference_lines
from facekit.style import STYLES, current_style

__all__ = ["LivePlot", "TerminalProgress", "live_mode"]


def live_mode(mode: str = "auto") -> str:
    """'plot' in a Jupyter kernel, 'text' elsewhere, 'off' when ``FACEKIT_LIVE=0``."""
    if mode != "auto":
        if mode not in ("plot", "text", "off"):
            raise ValueError(f"mode must be 'auto', 'plot', 'text' or 'off', not {mode!r}")
        return mode
    if os.environ.get("FACEKIT_LIVE", "1").strip().lower() in ("0", "off", "false", "no"):
        return "off"
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return "plot" if type(shell).__name__ == "ZMQInteractiveShell" else "text"


class LivePlot(keras.callbacks.Callback):
    """Redraw loss and accuracy in place during ``model.fit`` (any Keras model with an accuracy metric).

    Pass the same instance to several ``fit`` calls (seeds, variants) and their curves share one
    figure, each under its ``label`` (set ``live.label = ...`` before each call). ``every`` is the
    least number of seconds between two redraws: redrawing costs time on a small CPU (chapter 2's
    seeds took 82, 76 and 82 s redrawing every second, 72, 75 and 74 s every 3 s, 64, 69 and 77 s
    without a live plot; 2 cores).

    Taught in chapter 02, section 4.
    """

    def __init__(self, title: str = "training", every: float = 3.0, mode: str = "auto",
                 n_classes: int | None = None) -> None:
        super().__init__()
        self.title, self.every, self.mode = title, every, live_mode(mode)
        self.n_classes, self.label = n_classes, ""
        self.runs: list[dict[str, Any]] = []
        self._fig: Any = None
        self._handle: Any = None
        self._drawn = 0.0

    # --- recording -----------------------------------------------------------------------
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.n_classes is None:
            self.n_classes = int(self.model.outputs[0].shape[-1])
        label = self.label or f"run {len(self.runs) + 1}"
        self.runs.append({"label": label, "x": [], "batch_loss": [], "epoch": [], "loss": [],
                          "accuracy": [], "val_loss": [], "val_accuracy": []})
        self._mean, self._epoch, self._total, self._count, self._first = 0.0, 0, 0.0, 0.0, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch, self._mean = epoch, 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.mode == "off" or not logs or "loss" not in logs:
            return
        run = self.runs[-1]
        run["batch_loss"].append(self._batch_loss(batch, float(logs["loss"])))
        steps = (self.params or {}).get("steps") or (batch + 1)
        run["x"].append(self._epoch + (batch + 1) / steps)
        if self.mode == "plot" and time.monotonic() - self._drawn >= self.every:
            self._draw()

    def _batch_loss(self, batch: int, mean: float) -> float:
        """This batch's own loss. Keras reports a running mean over the epoch, weighted by batch size
        (unless something resets the metrics every batch, as `facekit.train.fit` does): the loss
        tracker's total and count give the batch's share exactly either way."""
        tracker = next((m for m in self.model.metrics if m.name == "loss"), None)  # Keras' loss Mean
        try:
            total, count = float(tracker.total.numpy()), float(tracker.count.numpy())  # type: ignore[union-attr]
        except AttributeError:  # another backend or version: assume equal batch sizes, no resets
            loss, self._mean = (batch + 1) * mean - batch * self._mean, mean
            return loss
        if batch == 0:
            self._first = count  # one full batch
        if count <= self._first:  # the tracker holds this batch alone (a reset, or the first batch)
            loss = total / max(count, 1e-12)
        else:
            loss = (total - self._total) / max(count - self._count, 1e-12)
        self._total, self._count = total, count
        return loss

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.mode == "off":
            return
        logs, run = logs or {}, self.runs[-1]
        run["epoch"].append(epoch + 1)
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            run[key].append(float(logs[key]) if key in logs else math.nan)
        if self.mode == "text":
            parts = [f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                     if k in logs]
            print(f"{run['label']} epoch {epoch + 1}: " + ", ".join(parts), flush=True)
        elif time.monotonic() - self._drawn >= self.every:  # short epochs: not a redraw each
            self._draw()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.mode == "plot":
            self._draw()

    # --- drawing -------------------------------------------------------------------------
    def _draw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        if self._fig is None:
            self._fig = loss_accuracy_figure(len(self.runs))[0]
            plt.close(self._fig)  # shown through the display handle only, never again at cell end
        fig = self._fig
        ax_loss, ax_acc = fig.axes
        for ax in (ax_loss, ax_acc):
            ax.clear()
        c = self.n_classes or 2
        for i, run in enumerate(self.runs):
            st = STYLES[i % len(STYLES)]
            ax_loss.plot(run["x"], run["batch_loss"], color=st["color"], lw=0.8, alpha=0.6,
                         label=f"{run['label']} batch loss")
            if run["epoch"]:
                ax_loss.plot(run["epoch"], run["val_loss"], color=st["color"], marker=st["marker"],
                             ls="--", mfc="white", label=f"{run['label']} val loss")
                ax_acc.plot(run["epoch"], run["accuracy"], color=st["color"], marker=st["marker"],
                            label=f"{run['label']} train")
                ax_acc.plot(run["epoch"], run["val_accuracy"], color=st["color"], marker=st["marker"],
                            ls="--", mfc="white", label=f"{run['label']} val")
        reference_lines(ax_loss, ax_acc, c)
        losses = [v for r in self.runs for v in r["batch_loss"] + r["val_loss"] if np.isfinite(v)]
        if losses:
            ax_loss.set_ylim(0, 1.05 * max(math.log(c) + 0.3, min(max(losses), 3 * math.log(c))))
        big = current_style() == "projector"  # large type: short titles, or they run into each other
        ax_loss.set(xlabel="epoch (batches as fractions)", ylabel="cross-entropy loss (nats)",
                    title="loss" if big else "loss: every batch (solid), validation per epoch (dashed)")
        ax_acc.set(xlabel="epoch", ylabel="accuracy (0-1)" if big else "accuracy (fraction correct)",
                   ylim=(0, 1.02), title="accuracy per epoch")
        last = max((r["epoch"][-1] for r in self.runs if r["epoch"]), default=1)
        ax_loss.set_xlim(0, max(last, max((r["x"][-1] for r in self.runs if r["x"]), default=1)) + 0.5)
        ax_acc.set_xlim(0.5, last + 0.5)  # per-epoch points only: the axis starts at epoch 1
        ax_acc.xaxis.get_major_locator().set_params(integer=True)
        finish(fig, self.title)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        self._drawn = time.monotonic()


class TerminalProgress(keras.callbacks.Callback):
    """A one-line progress bar for `facekit story` and scripts: model, epoch, batch, running loss.

    Drawn with rich (installed with Keras) on an interactive terminal and removed when training
    ends; prints nothing when stdout is not a terminal (CI logs, pipes, tests).
    """

    def __init__(self, enabled: bool | None = None) -> None:
        super().__init__()
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self._progress: Any = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        params = self.params or {}
        self._epochs, steps = params.get("epochs") or 1, params.get("steps") or 1
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                  TextColumn("{task.fields[loss]}"), transient=True)
        self._progress.start()
        self._task = self._progress.add_task(self.model.name, total=self._epochs * steps, loss="")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._progress is not None:
            name = f"{self.model.name} epoch {epoch + 1}/{self._epochs}"
            self._progress.update(self._task, description=name)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._progress is not None:
            loss = (logs or {}).get("loss")
            text = "" if loss is None else f"loss {float(loss):.4f}"
            self._progress.update(self._task, advance=1, loss=text)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

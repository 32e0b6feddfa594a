"""Live progress: LivePlot records true batch losses and draws in place; silent when asked."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from facekit.plots.live import LivePlot, TerminalProgress, live_mode


def _tiny(seed: int = 0) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    return model, rng.normal(size=(40, 6)).astype("float32"), rng.integers(0, 4, 40)


class _Recorder(keras.callbacks.Callback):
    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        super().__init__()
        self.x, self.y, self.bs, self.losses = x, y, batch_size, []

    def on_train_batch_begin(self, batch, logs=None):
        xb, yb = self.x[batch * self.bs:(batch + 1) * self.bs], self.y[batch * self.bs:(batch + 1) * self.bs]
        self.losses.append(float(self.model.compute_loss(xb, yb, self.model(xb))))


def test_batch_loss_is_each_batch_s_own_loss_not_the_running_mean():
    model, x, y = _tiny()
    live, rec = LivePlot(mode="text"), _Recorder(x, y, 16)  # 40 images: batches of 16, 16 and 8
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[rec, live])
    np.testing.assert_allclose(live.runs[0]["batch_loss"], rec.losses, rtol=1e-4)
    assert live.runs[0]["x"] == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])


def test_text_mode_prints_one_line_per_epoch(capsys):
    model, x, y = _tiny()
    live = LivePlot(mode="text")
    live.label = "tiny"
    model.fit(x, y, validation_data=(x, y), batch_size=16, epochs=3, verbose=0, callbacks=[live])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("tiny epoch 1: loss ") and "val_accuracy" in lines[-1]


def test_plot_mode_draws_one_figure_for_several_runs(capsys):
    live = LivePlot(mode="plot", every=0.0)
    for seed in (0, 1):
        model, x, y = _tiny(seed)
        live.label = f"seed {seed}"
        model.fit(x, y, validation_data=(x, y), batch_size=16, epochs=2, verbose=0, callbacks=[live])
    ax_loss, ax_acc = live._fig.axes
    assert [r["label"] for r in live.runs] == ["seed 0", "seed 1"]
    assert ax_loss.get_ylabel() and ax_acc.get_ylabel() and ax_loss.get_xlabel()
    ref = [line for line in ax_loss.get_lines() if line.get_label().startswith("ln 4")]
    assert ref and ref[0].get_ydata()[0] == pytest.approx(math.log(4))
    assert any(line.get_label().startswith("chance = 1/4") for line in ax_acc.get_lines())


def test_facekit_live_0_turns_it_off(monkeypatch, capsys):
    monkeypatch.setenv("FACEKIT_LIVE", "0")
    assert live_mode() == "off"
    model, x, y = _tiny()
    live = LivePlot()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[live])
    assert capsys.readouterr().out == "" and live._fig is None
    monkeypatch.delenv("FACEKIT_LIVE")
    assert live_mode() == "text"  # pytest is no notebook
    with pytest.raises(ValueError, match="mode must be"):
        live_mode("loud")


def test_terminal_progress_is_silent_off_a_terminal(capsys):
    model, x, y = _tiny()
    bar = TerminalProgress()
    assert not bar.enabled  # pytest captures stdout: no terminal
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[bar])
    assert capsys.readouterr().out == ""
    forced = TerminalProgress(enabled=True)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[forced])  # draws, then removes itself
    assert forced._progress is None


def test_batch_loss_is_right_under_facekit_fit_which_resets_metrics_every_batch():
    from facekit.train import fit

    model, x, y = _tiny()
    images = (np.abs(x[:, :6]) * 40).astype("uint8").reshape(40, 1, 2, 3)
    model = keras.Sequential([keras.Input((1, 2, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    live = LivePlot(mode="text")
    h = fit(model, (images, y), epochs=2, batch_size=16, seed=0, callbacks=[live])
    np.testing.assert_allclose(live.runs[0]["batch_loss"], h.batch_loss, rtol=1e-5)

"""The whole story, headless: data -> the question's network (stuck at ln C) -> the doctor's
diagnosis -> the answer's network (learns, overfits) -> the improved network (generalises) -> a
verdict; a compact report on stdout and figures on disk.

One function per chapter it runs (`reproduce` 02, `diagnose` 04 (the doctor), `fix` 05, `beyond` 06),
used by `run_story` and by the chapters themselves where they do the same thing; `write_figures` draws.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras

from facekit import plots
from facekit.ablation import outcome
from facekit.data import Dataset
from facekit.diagnose import Report, doctor
from facekit.generalize import Comparison, load_regime, run_recipe
from facekit.models import answer_model, question_model
from facekit.profiles import Profile, get_profile, load_profile_data
from facekit.runs import RunCache
from facekit.text import WIDTH, markdown_table, wrap
from facekit.train import History, fit, label_callbacks

__all__ = ["StoryResult", "run_story", "reproduce", "diagnose", "fix", "beyond", "write_figures"]


@dataclass
class StoryResult:
    profile: Profile
    data: Dataset
    question: list[History] = field(default_factory=list)
    answer: History | None = None
    report: Report | None = None  # the doctor on the first stuck question run
    generalize: Comparison | None = None  # chapter 06: answer vs improved net
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        runs = [(h, s) for h, s in zip(self.question, self.profile.seeds)]
        runs += [(self.answer, self.profile.seeds[0])] if self.answer else []
        rows = [[h.label.split(",")[0],  # "question net, seed 0": the seed has its own column
                 seed, f"{h.final('loss'):.4f}", f"{h.final('accuracy'):.3f}",
                 f"{h.final('val_accuracy'):.3f}", "yes" if h.stuck else "no"] for h, seed in runs]
        header = ["network", "seed", "final loss", "train acc", "val acc", "stuck at chance"]
        return markdown_table(header, rows)

    def verdict(self) -> str:
        c = self.data.n_classes
        k, n = sum(h.stuck for h in self.question), len(self.question)
        text = (f"The question's network sat at chance on {k} of {n} seeds: its training loss "
                f"stayed at ln {c} = {math.log(c):.3f} and its accuracy at 1/{c} = {1 / c:.3f}, "
                "so it predicts the same probabilities for every image.")
        if self.report is not None and not self.report.ok:
            failed = [c.name for c in self.report.checks if not c.ok]
            dying = self.report.dying_layers
            text += (f" The doctor measured why: {', '.join(failed)} failed"
                     + (f"; the signal dies from {dying[0]} on" if dying else "")
                     + (f"; first fix to try: {self.report.suggestions[0].split(':')[0]}."
                        if self.report.suggestions else "."))
        if self.answer is not None:
            a = self.answer
            tr, va = a.final("accuracy"), a.final("val_accuracy")
            what = outcome(a)[0]
            text += (f" The answer's network {'learns' if what == 'learns' else 'is ' + what}: held-out "
                     f"accuracy {va:.2f} in inference mode after {len(a.epochs)} epochs, training "
                     f"accuracy {tr:.2f}"
                     + (" - it memorises the training images (overfitting); the answer stops here."
                        if tr - va > 0.15 else " - no large gap yet after this few epochs."))
        g = self.generalize
        if g is not None:
            text += (f" Where the answer's network memorises (train {g.median('answer', 'train_acc'):.2f}"
                     f" / val {g.median('answer', 'val_acc'):.2f}), the improved network reaches val "
                     f"{g.median('improved', 'val_acc'):.2f} and test {g.median('improved', 'test_acc'):.2f}"
                     f" with {g.of('improved')[0].params / g.of('answer')[0].params:.0%} of the "
                     f"parameters ({g.gap_closed('improved'):.0%} of the gap closed).")
        return text


def _quiet(*args: object) -> None:
    pass


def _printer(verbose: bool) -> Callable[..., None]:
    return (lambda *a: print(*a, flush=True)) if verbose else _quiet


REPRODUCED = RunCache()  # reproduce(reuse=True): (model, History) by profile, seed and data
BEYOND = RunCache()  # beyond(reuse=True): RunResult by profile, recipe, seed and data


def reproduce(prof: Profile, train: Dataset, val: Dataset, *, seeds: tuple[int, ...] | None = None,
              verbose: bool = False, callbacks: Sequence[keras.callbacks.Callback] = (),
              reuse: bool = False) -> dict[int, tuple[keras.Model, History]]:
    """Chapter 02: the question's network trained on each seed (``prof.seeds``), as asked (Adam
    1e-3); ``{seed: (model, history)}``. ``verbose`` prints one line a seed; ``callbacks`` run in
    every seed's `fit` (a `facekit.plots.LivePlot` gets each seed's curves under its label).
    ``reuse=True`` returns a seed's run from an earlier call in this process with the same profile
    and the same data objects instead of training it again (a chapter section can then run alone)."""
    say = _printer(verbose)
    runs = {}
    for s in seeds or prof.seeds:
        key = (repr(prof), s, id(train), id(val))
        if reuse and (hit := REPRODUCED.get(key, (train, val))) is not None:
            runs[s] = hit
            say(f"seed {s}: reused the run made earlier in this session")
            continue
        model = question_model(prof.input_shape, train.n_classes, prof.filters, seed=s)
        label_callbacks(callbacks, f"seed {s}")
        h = fit(model, train, val, epochs=prof.epochs, batch_size=prof.batch_size, seed=s,
                label=f"question net, seed {s}", callbacks=list(callbacks))
        runs[s] = (model, h)
        REPRODUCED.put(key, (train, val), (model, h))
        say(f"seed {s}: final loss {h.final('loss'):.4f} (ln {train.n_classes} = {h.chance_loss:.4f}), "
            f"train acc {h.final('accuracy'):.3f} -> "
            + ("stuck at chance" if h.stuck else
               f"{outcome(h)[0]} (held-out accuracy {h.final('val_accuracy'):.3f}, inference mode)")
            + f"  ({sum(e['seconds'] for e in h.epochs):.0f} s)")
    return runs


def diagnose(runs: dict[int, tuple[keras.Model, History]], train: Dataset,
             val: Dataset | None = None) -> Report:
    """Chapter 04: the doctor on the first stuck run of `reproduce` (the first run if none is),
    judged on ``val`` in inference mode when given."""
    model = next((m for m, h in runs.values() if h.stuck), next(iter(runs.values()))[0])
    return doctor(model, train, val=val)


def fix(prof: Profile, train: Dataset, val: Dataset, seed: int = 0,
        verbose: bool = False) -> tuple[keras.Model, History]:
    """Chapter 05: the answer's network trained for ``prof.answer_epochs``."""
    model = answer_model(prof.input_shape, train.n_classes, seed=seed)
    h = fit(model, train, val, epochs=prof.answer_epochs, batch_size=prof.batch_size, seed=seed,
            label="answer net", verbose=int(verbose))
    return model, h


def beyond(prof: Profile, train: Dataset, val: Dataset, test: Dataset,
           recipes: tuple[str, ...] = ("answer", "improved"), *, seeds: tuple[int, ...] | None = None,
           keep_model: bool = False, verbose: bool = False,
           callbacks: Sequence[keras.callbacks.Callback] = (), reuse: bool = False) -> Comparison:
    """Chapter 06: ``recipes`` in the profile's regime (`facekit.profiles.Regime`), each on every
    seed: the answer's network for ``answer_epochs``, any other recipe up to ``epochs`` with early
    stopping. ``verbose`` prints one line a run; ``callbacks`` (a `facekit.plots.LivePlot`) run in
    every `fit`, labelled by recipe and seed. ``reuse=True`` returns a run made by an earlier call in
    this process (same profile, recipe, seed and data objects) instead of training it again."""
    say, r = _printer(verbose), prof.regime
    runs = []
    for name in recipes:
        for s in seeds or prof.seeds:
            key = (repr(prof), name, s, id(train), id(val), id(test))
            old = BEYOND.get(key, (train, val, test))
            if reuse and old is not None and (old.model is not None or not keep_model):
                runs.append(old)
                say(f"{name} seed {s}: reused the run made earlier in this session")
                continue
            label_callbacks(callbacks, f"{name} seed {s}")
            run = run_recipe(name, train, val, test, seed=s,
                             epochs=r.answer_epochs if name == "answer" else r.epochs,
                             patience=r.patience, batch_size=prof.batch_size, keep_model=keep_model,
                             callbacks=callbacks)
            runs.append(run)
            BEYOND.put(key, (train, val, test), run)
            say(f"{name} seed {s}: train {run.train_acc:.2f}  val {run.val_acc:.2f}  (gap {run.gap:.2f})  "
                f"kept epoch {run.best_epoch} of {run.epochs}, {run.seconds_per_epoch:.1f} s/epoch")
    return Comparison(runs)


def write_figures(result: StoryResult, out: str | Path) -> list[Path]:
    """The story's four figures as PNGs in ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = [("question_net.png", plots.plot_histories(
        result.question, "the question's network: stuck at chance",
        [f"seed {s}" for s in result.profile.seeds]))]
    if result.report is not None:
        figures.append(("question_net_layers.png", plots.plot_layer_stats(
            result.report["activations"], "the question's network after training: activations per layer")))
    if result.answer is not None:
        gap = result.answer.final("accuracy") - result.answer.final("val_accuracy")
        figures.append(("answer_net.png", plots.plot_history(result.answer, "the answer's network: learns" + (
            ", then memorises (train >> validation)" if gap > 0.15 else ""))))
    if result.generalize is not None:
        g = result.generalize
        figures.append(("generalize.png", plots.plot_histories(
            [h for h in (g.of("answer")[0].history, g.of("improved")[0].history) if h is not None],
            "memorising vs generalising",
            ["answer net", "improved net"])))
    paths = []
    for name, fig in figures:
        plots.save(fig, out / name)
        paths.append(out / name)
    return paths


def run_story(profile: str | Profile | None = None, data: str = "synthetic", seed: int = 0,
              out: str | Path = "reports", verbose: bool = True) -> StoryResult:
    """Run the story on ``profile``; print a compact report when ``verbose``; write figures to
    ``out``. Returns the histories and the verdict."""
    say = _printer(verbose)
    t0 = time.perf_counter()
    prof = get_profile(profile)
    if seed:
        prof = get_profile(prof, seeds=tuple(seed + s for s in prof.seeds))
    Path(out).mkdir(parents=True, exist_ok=True)
    say(wrap(f"facekit story - {prof.describe(None)}"))
    train, val = load_profile_data(prof, data, seed)
    result = StoryResult(prof, train)
    say(f"data: {len(train)} train / {len(val)} validation images, {train.n_classes} classes "
        f"({', '.join(train.class_names)})")
    if train.skipped:
        say(f"      {len(train.skipped)} files skipped: {train.skipped_summary()}")

    say(f"\n1. the question's network ({prof.filters} filters, 10 convs 2x2 valid), "
        f"{prof.epochs} epochs, seeds {list(prof.seeds)}")
    runs = reproduce(prof, train, val, verbose=verbose)
    result.question = [h for _, h in runs.values()]

    say("\n2. the doctor, on the first stuck question run (facekit.diagnose.doctor)")
    result.report = diagnose(runs, train, val)
    say("\n".join("   " + line for line in result.report.text(WIDTH - 3).splitlines()))

    s = prof.seeds[0]
    say(f"\n3. the answer's network (16/32/64 filters, padding='same', Dense 512), "
        f"{prof.answer_epochs} epochs, seed {s}")
    _, result.answer = fix(prof, train, val, seed=s)
    say(result.answer.table())

    r = prof.regime
    say(f"\n4. beyond the answer: {r.per_class} training images a class at {r.size} px, "
        f"answer net {r.answer_epochs} epochs vs improved net (early stopping, up to "
        f"{r.epochs}), seed {s}")
    result.generalize = beyond(prof, *load_regime(prof, data, seed), seeds=(s,))
    say(result.generalize.table())

    result.figures = write_figures(result, out)
    result.seconds = time.perf_counter() - t0
    say("\n" + result.table())
    say(wrap("\nverdict: " + result.verdict()))
    say(f"\nfigures: {', '.join(str(p) for p in result.figures)}  ({result.seconds:.0f} s in all)")
    return result

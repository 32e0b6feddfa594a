"""The whole story, headless: data -> the question's network (stuck at ln C) -> the doctor's
diagnosis -> the answer's network (learns, overfits) -> the improved network (generalises) -> a
verdict; a compact report on stdout and figures on disk."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from facekit.data import Dataset, load
from facekit.profiles import Profile, get_profile
from facekit.train import History

__all__ = ["StoryResult", "run_story", "load_profile_data"]


@dataclass
class StoryResult:
    profile: Profile
    data: Dataset
    question: list[History] = field(default_factory=list)
    answer: History | None = None
    report: object = None  # facekit.diagnose.Report on the first question run
    generalize: object = None  # facekit.generalize.Comparison: answer vs improved net
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        rows = ["| network | seed | final loss | train acc | val acc | stuck at chance |",
                "|---|---|---|---|---|---|"]
        runs = [(h, s) for h, s in zip(self.question, self.profile.seeds)]
        runs += [(self.answer, self.profile.seeds[0])] if self.answer else []
        for h, seed in runs:
            rows.append(f"| {h.label} | {seed} | {h.final('loss'):.4f} | {h.final('accuracy'):.3f} "
                        f"| {h.final('val_accuracy'):.3f} | {'yes' if h.stuck else 'no'} |")
        return "\n".join(rows)

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
            text += (f" The answer's network learns: training accuracy {tr:.2f} after "
                     f"{len(a.epochs)} epochs, "
                     + (f"but validation accuracy only {va:.2f} - it memorises the training images "
                        "(overfitting); the answer stops here." if tr - va > 0.15 else
                        f"validation accuracy {va:.2f} - no large gap yet after this few epochs."))
        g = self.generalize
        if g is not None:
            text += (f" Where the answer's network memorises (train {g.median('answer', 'train_acc'):.2f}"
                     f" / val {g.median('answer', 'val_acc'):.2f}), the improved network reaches val "
                     f"{g.median('improved', 'val_acc'):.2f} and test {g.median('improved', 'test_acc'):.2f}"
                     f" with {g.of('improved')[0].params / g.of('answer')[0].params:.0%} of the "
                     f"parameters ({g.gap_closed('improved'):.0%} of the gap closed).")
        return text


def load_profile_data(profile: Profile, data: str = "synthetic", seed: int = 0) -> tuple[Dataset, Dataset]:
    """The profile's data set, split (shuffled, stratified) into train and validation."""
    ds = load(data, size=profile.size, per_class=profile.per_class, seed=seed,
              difficulty=profile.difficulty)
    return ds.split(profile.val_fraction, seed=seed)


def run_story(profile: str | Profile | None = None, data: str = "synthetic", seed: int = 0,
              out: str | Path = "reports", verbose: bool = True) -> StoryResult:
    """Run the story on ``profile``; print a compact report when ``verbose``; write figures to
    ``out``. Returns the histories and the verdict."""
    from facekit import plots
    from facekit.diagnose import doctor
    from facekit.models import answer_model, question_model
    from facekit.train import fit

    def say(*a):
        if verbose:
            print(*a, flush=True)

    t0 = time.perf_counter()
    prof = get_profile(profile)
    if seed:
        prof = get_profile(prof, seeds=tuple(seed + s for s in prof.seeds))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say(f"facekit story - {prof.describe()}")
    train, val = load_profile_data(prof, data, seed)
    result = StoryResult(prof, train)
    say(f"data: {len(train)} train / {len(val)} validation images, {train.n_classes} classes "
        f"({', '.join(train.class_names)})")
    if train.skipped:
        say(f"      {len(train.skipped)} files skipped: {train.skipped_summary()}")

    say(f"\n1. the question's network ({prof.filters} filters, 10 convs 2x2 valid), "
        f"{prof.epochs} epochs, seeds {list(prof.seeds)}")
    models = []
    for s in prof.seeds:
        model = question_model(prof.input_shape, train.n_classes, prof.filters, seed=s)
        models.append(model)
        h = fit(model, train, val, epochs=prof.epochs, batch_size=prof.batch_size, seed=s,
                label="question net")
        result.question.append(h)
        say(f"   seed {s}: final loss {h.final('loss'):.4f} (ln {train.n_classes} = "
            f"{h.chance_loss:.4f}), train acc {h.final('accuracy'):.3f} -> "
            f"{'stuck at chance' if h.stuck else 'learning'}  ({sum(e['seconds'] for e in h.epochs):.0f} s)")

    say("\n2. the doctor, on the first question run (facekit.diagnose.doctor)")
    first = next((m for m, h in zip(models, result.question) if h.stuck), models[0])
    result.report = doctor(first, train)
    say("\n".join("   " + line for line in str(result.report).splitlines()))

    s = prof.seeds[0]
    say(f"\n3. the answer's network (16/32/64 filters, padding='same', Dense 512), "
        f"{prof.answer_epochs} epochs, seed {s}")
    model = answer_model(prof.input_shape, train.n_classes, seed=s)
    result.answer = fit(model, train, val, epochs=prof.answer_epochs, batch_size=prof.batch_size,
                        seed=s, label="answer net")
    say(result.answer.table())

    say(f"\n4. beyond the answer: {prof.gen_per_class} training images a class at {prof.gen_size} px, "
        f"answer net {prof.gen_answer_epochs} epochs vs improved net (early stopping, up to "
        f"{prof.gen_epochs}), seed {s}")
    from facekit.generalize import Comparison, load_regime, run_recipe

    g_train, g_val, g_test = load_regime(prof, data, seed)
    runs = [run_recipe(name, g_train, g_val, g_test, seed=s, epochs=ep, patience=prof.gen_patience)
            for name, ep in (("answer", prof.gen_answer_epochs), ("improved", prof.gen_epochs))]
    result.generalize = Comparison(runs)
    say(result.generalize.table())

    path = out / "question_net.png"
    plots.save(plots.plot_histories(result.question, "the question's network: stuck at chance",
                                    [f"seed {s}" for s in prof.seeds]), path)
    result.figures.append(path)
    path = out / "question_net_layers.png"
    plots.save(plots.plot_layer_stats(result.report["activations"],
                                      "the question's network after training: activations per layer"), path)
    result.figures.append(path)
    path = out / "answer_net.png"
    gap = result.answer.final("accuracy") - result.answer.final("val_accuracy")
    plots.save(plots.plot_history(result.answer, "the answer's network: learns" + (
        ", then memorises (train >> validation)" if gap > 0.15 else "")), path)
    result.figures.append(path)
    path = out / "generalize.png"
    plots.save(plots.plot_histories([r.history for r in runs], "memorising vs generalising",
                                    ["answer net", "improved net"]), path)
    result.figures.append(path)
    result.seconds = time.perf_counter() - t0
    say("\n" + result.table())
    say("\nverdict: " + result.verdict())
    say(f"\nfigures: {', '.join(str(p) for p in result.figures)}  ({result.seconds:.0f} s in all)")
    return result

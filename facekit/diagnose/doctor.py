"""The doctor: run every check on a model and a data sample, and rank what to try."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np

import facekit.diagnose.checks as measure
from facekit.core import DataLike
from facekit.diagnose.checks import Check
from facekit.diagnose.held_out import held_out_check, mode_check
from facekit.diagnose.intake import admit
from facekit.diagnose.labels import class_balance, labels_follow_images
from facekit.diagnose.probes import act_name
from facekit.diagnose.trials import Trial, is_conv, learning_rate, ranked, saturating_layers, try_fixes
from facekit.text import WIDTH, wrap

__all__ = ["Report", "doctor", "RULE_ORDER"]


@dataclass
class Report:
    """What `doctor` found: the checks, where the signal dies, ranked suggestions, and (with
    ``trials=True``) the fixes it tried, each against the unchanged model from the same start."""

    model_name: str
    checks: list[Check]
    dying_layers: list[str]
    suggestions: list[str]
    trials: list[Trial] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # the rule-based suggestions, before any trial
    asked_steps: int = 0  # the steps a trial was asked for (the budget may afford fewer)
    budget: float | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def __getitem__(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def text(self, width: int = WIDTH, checks: bool = True) -> str:
        """The report as printed, every line at most ``width`` characters (`facekit.text.wrap`):
        a long check or suggestion goes on under its text, so the ``[ok]``/``[!!]`` column and the
        numbers stay readable. ``checks=False`` leaves the checks out (the trials and the ranking
        only, for a report whose checks were printed already)."""
        lines = [f"facekit doctor - {self.model_name}: "
                 + ("healthy" if self.ok else f"{sum(not c.ok for c in self.checks)} check(s) failed")
                 + ("" if checks else " (the checks as printed before)")]
        if checks:
            lines += [f"  {c.line}" for c in self.checks]
        if checks and self.dying_layers:
            lines.append(f"  the signal dies in: {', '.join(self.dying_layers)}")
        if self.trials:
            steps = max(len(t.losses) for t in self.trials)
            n_val = max(t.n_val for t in self.trials)
            lines.append(f"  fixes tried on fresh copies ({steps} steps each, the same images and batches; "
                         f"judged in inference mode on {n_val} held-out images):")
            if steps < self.asked_steps:
                lines.append(f"      scaled down: {steps} steps a trial, not {self.asked_steps} - "
                             f"{_step_time(self.trials)} s a step here, the budget {self.budget:g} s")
            lines += [f"    {t}" for t in self.trials]
        if self.suggestions:
            order = " (ranked by the trials' held-out accuracy):"
            lines.append("  try, in this order" + (order if self.trials else ":"))
            lines += [f"    {i}. {s}" for i, s in enumerate(self.suggestions, 1)]
        return wrap("\n".join(lines), width)

    def __str__(self) -> str:
        return self.text()

    @property
    def top_fix(self) -> str | None:
        """The name of the best fix the trials measured (one whose held-out accuracy beat the
        unchanged model's), or None without trials or when none helped."""
        best = ranked(self.trials)
        return best[0].fix if best else None

    @property
    def first_step(self) -> str | None:
        """What to do first: ``"recalibrate_batchnorm"`` when the inference-mode check failed and
        recalibrating a copy cured it (measured), else `top_fix`."""
        mode = next((c for c in self.checks if c.name == "inference mode"), None)
        return "recalibrate_batchnorm" if mode is not None and "advice" in mode.values else self.top_fix

    __repr__ = __str__


def _initializers(model: keras.Model) -> set[str]:
    return {type(la.kernel_initializer).__name__ for la in model.layers
            if hasattr(la, "kernel_initializer")}


# Adam-family optimizers: their step is about the learning rate for every weight, whatever its gradient
_ADAPTIVE = ("Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "Adadelta", "Lion", "Lamb")

# the rule-based fixes for a weak signal, in the order the multi-seed ablation ranks them
# (benchmarks/results/ablation.md; tests/test_doctor_rules.py keeps the two in step)
RULE_ORDER = ("batch_norm", "fewer_layers", "lower_lr", "he_init")


def _signal_fixes(model: keras.Model, checks: dict[str, Check]) -> dict[str, str]:
    """The rule-based fixes for a signal that fades, by trial name (`facekit.diagnose.trials.FIXES`)."""
    fixes: dict[str, str] = {}
    layers = checks["activations"].values.get("layers", [])
    n_act = len(layers)
    acts = {act_name(la) for la in model.layers if act_name(la)}
    where = ("each convolution" if any(is_conv(la) for la in model.layers) else
             "each hidden Dense layer" if any(isinstance(la, keras.layers.Dense) for la in model.layers[:-1])
             else "")
    if where and not any(isinstance(la, keras.layers.BatchNormalization) for la in model.layers):
        fixes["batch_norm"] = (f"BatchNormalization after {where}: re-scales the signal at every "
                               "layer, whatever the initialisation; then recalibrate its moving statistics "
                               "(recalibrate_batchnorm, or PreciseBatchNorm in fit) before you judge it - "
                               "Keras' val_accuracy and evaluate() use them, and after a fast escape from "
                               "ln C they lag behind")
    if n_act > 3:
        hidden = acts - {"softmax", "linear"}
        kind = "ReLU" if hidden == {"relu"} else "activation"
        fixes["fewer_layers"] = f"fewer layers ({n_act} {kind} layers now): each one shrinks the signal"
    opt, lr = type(getattr(model, "optimizer", None)).__name__, learning_rate(model)
    if opt in _ADAPTIVE and lr is not None and lr > 3e-4:
        fixes["lower_lr"] = (f"a lower learning rate ({lr:g} -> {lr / 10:g}): {opt} moves every weight by "
                             "about the learning rate each step, whatever its gradient; on a signal this "
                             "weak that kills the deep channels in the first epoch")
    if {"GlorotUniform", "GlorotNormal"} & _initializers(model) and "relu" in acts:
        fixes["he_init"] = ("He initialisation (kernel_initializer='he_normal'): Glorot init lets each ReLU "
                            "layer halve the signal's energy; check the loss at init again after it")
    return fixes


_DATA_FIRST = "the labels may not follow the images"
_LOSS_FIRST = "the loss reads the outputs wrongly"
_SCALE_FIRST = "the inputs go up to"


def _first_findings(model: keras.Model, checks: dict[str, Check], x: np.ndarray) -> list[str]:
    """Measured faults that come before any network fix: the loss misreading the outputs, pixels
    fed unscaled where it shows (loss at init or activations fail), and labels that neither the
    network nor a pixel-level reference model can predict."""
    s: list[str] = []
    matched = checks.get("loss vs outputs")
    if matched is not None and not matched.ok:
        s.append(f"{_LOSS_FIRST}: {matched.verdict}; compile the loss with {matched.values['fix']}")
    if (unscaled := _unscaled(model, x)) and (not checks["loss vs ln C"].ok or not checks["activations"].ok):
        s.append(unscaled)
    labels, held = checks["labels vs images"], checks["held-out accuracy"]
    memorised = held.ok and "validation" not in held.verdict and held.values.get("steps", 0) > 0
    if not labels.ok and (not held.ok or memorised):
        acc = held.values["scores"]["accuracy"]
        net = (f"neither the network (held-out accuracy {acc:.2f}) nor" if not held.ok else
               f"the network's {acc:.2f} is on images it may have trained on (pass val=), and not even")
        s.append(f"{_DATA_FIRST}: {net} a linear model on thumbnails ({labels.values['accuracy']:.2f}) "
                 f"beats chance ({labels.values['chance']:.2f}); check the data before the network: labels "
                 "shuffled apart from their images, class folders read in another order than the outputs, "
                 "labels from another file")
    return s


def _suggest(model: keras.Model, checks: dict[str, Check], x: np.ndarray) -> list[str]:
    s = _first_findings(model, checks, x)
    if "advice" in checks["inference mode"].values:
        s.append(checks["inference mode"].values["advice"])
    acts, grads = checks["activations"], checks["gradients"]
    saturating = saturating_layers(model)
    if saturating and (not acts.ok or not checks["output sensitivity"].ok or not grads.ok):
        s.append(f"ReLU instead of {act_name(saturating[0])} in the {len(saturating)} hidden layers that "
                 "saturate: a sigmoid's slope is at most 1/4 (tanh's 1), so the gradient shrinks at "
                 "every such layer on its way back")
    if not acts.ok or not checks["output sensitivity"].ok:
        fixes = _signal_fixes(model, checks)
        s += [fixes[k] for k in RULE_ORDER if k in fixes]
    if not grads.ok:
        s.append("tiny gradients in the early layers: the small weights that shrink the signal on the way "
                 "in shrink its gradient on the way back, so the fixes for the signal fix both")
    if "overfit one batch" in checks and not checks["overfit one batch"].ok and acts.ok:
        s.append("lower the learning rate (run lr_sweep) and check the loss matches the outputs")
    held = checks["held-out accuracy"]
    if not held.ok and checks["inference mode"].ok and checks["labels vs images"].ok and all(
            checks[k].ok for k in ("activations", "output sensitivity", "input-independent baseline")):
        s.append("the signal is healthy but held-out images score at chance: check the labels match the "
                 "images" + (" and that the validation images come from the same source as the training "
                             "ones" if "validation" in held.verdict else ""))
    if not checks["loss vs ln C"].ok:
        s.append("check the inputs are scaled (Rescaling(1/255) inside the model) and the last "
                 "layer starts small")
    if (unscaled := _unscaled(model, x)) and unscaled not in s:
        s.append(unscaled)
    if not checks["class balance"].ok:
        s.append(f"the labels are imbalanced ({checks['class balance'].verdict})")
    s.append("data: look at exactly what enters the network (facekit.plots.show_batch) and check "
             "the labels match the images")
    return s


def _unscaled(model: keras.Model, x: np.ndarray) -> str:
    """The finding for pixels fed unscaled (values above 2 into a model with no Rescaling or
    Normalization layer), or ""."""
    top = float(x.max()) if x.size else 0.0
    if top <= 2 or any(isinstance(la, keras.layers.Rescaling | keras.layers.Normalization)
                       for la in model.layers):
        return ""
    return (f"the inputs go up to {top:g} and the model has no Rescaling layer: scale them "
            f"(keras.layers.Rescaling(1/{top:.0f}) as the model's first layer, or x / {top:.0f})")


def _rescaling(model: keras.Model) -> float | None:
    """The scale of the model's first Rescaling layer (1/255 for most image models), or None."""
    for la in model.layers:
        if isinstance(la, keras.layers.Rescaling):
            scale = np.asarray(la.scale, dtype=float)
            return float(scale.max()) if scale.size else None
    return None


def _before_anything(model: keras.Model, x: np.ndarray) -> Check | None:
    """A fault that makes every other measurement meaningless: weights holding NaN/infinity, or
    images scaled twice (0..1 floats into a model that divides by 255 itself)."""
    bad = [w.path for w in model.weights if not np.isfinite(keras.ops.convert_to_numpy(w)).all()]
    if bad:
        advice = (f"the weights hold NaN or infinity ({len(bad)} tensors, first {bad[0]}): training blew "
                  "up (NaN in the inputs, or a learning rate too large). Rebuild the model; no other "
                  "check means anything until then")
        return Check("finite weights", False, f"{len(bad)} weight tensors hold NaN or infinity "
                     f"(first: {bad[0]})", {"layers": bad, "advice": advice})
    scale = _rescaling(model)
    top = float(np.max(x)) if x.size else 0.0
    if scale is not None and scale < 0.1 and x.dtype.kind == "f" and 0 < top <= 1.0:
        advice = (f"inputs scaled twice: the images already run 0..{top:.3g}, and the model's own "
                  f"Rescaling({scale:.4g}) divides them again, so the network sees values under "
                  f"{top * scale:.2g}. Pass the uint8 (0-255) images, or drop the model's Rescaling")
        return Check("input scale", False, f"images 0..{top:.3g} into a model that rescales by "
                     f"{scale:.4g}: scaled twice", {"max": top, "scale": scale, "advice": advice})
    return None


def _measured(trials: list[Trial], rules: list[str], first: list[str], scaled: bool = False) -> list[str]:
    """Suggestions ranked by the trials: ``first`` (measured findings that come before any fix),
    fixes that helped (best first, with their numbers), then the rule-based advice that no trial
    covers, then what was tried and did not help. When trials cut short by the budget (``scaled``)
    separate nothing, the rules' order stands, and the report says so."""
    base = next(t for t in trials if t.fix == "baseline")
    helped = ranked(trials)
    out = list(first)
    if scaled and not helped:
        steps = max(len(t.losses) for t in trials)
        out.append(f"the trials, cut to {steps} steps by the budget, did not separate the fixes: the rules' "
                   "order follows (a larger budget measures them)")
        out += [r for r in rules if r not in first]
    else:
        out += [f"{t.what}: measured held-out loss {t.val_loss:.3f}, accuracy {t.val_accuracy:.2f} after "
                f"{len(t.losses)} steps (unchanged: {base.val_loss:.3f}, {base.val_accuracy:.2f})"
                for t in helped]
        out += [r for r in rules if r not in first and not any(r.startswith(k) for k in _RULE_FIXES)]
    out += [f"{t.what} did not beat the unchanged model in {len(t.losses)} steps "
            f"(held-out accuracy {t.val_accuracy:.2f} vs {base.val_accuracy:.2f})" for t in trials
            if t.tried and t.fix != "baseline" and t not in helped]
    return out


# the opening words of the rule-based suggestions that a trial tests
_RULE_FIXES = ("He initialisation", "BatchNormalization", "fewer layers", "a lower learning rate",
               "lower the learning rate", "ReLU instead of")


def _cut(trials: list[Trial], asked: int) -> bool:
    return max((len(t.losses) for t in trials), default=asked) < asked


def _step_time(trials: list[Trial]) -> str:
    timed = [t.seconds / len(t.losses) for t in trials if t.losses and t.seconds == t.seconds]
    return f"{float(np.median(timed)):.2g}" if timed else "?"


def _left(budget: float | None, start: float) -> float | None:
    return None if budget is None else max(budget - (time.perf_counter() - start), 0.0)


def doctor(model: keras.Model, data: DataLike, val: DataLike | None = None, n: int = 64,
           overfit_steps: int = 40, sweep: bool = False, trials: bool = False, trial_steps: int = 100,
           trial_images: int = 256, seed: int = 0, budget: float | None = None) -> Report:
    """Run the checks on ``model`` (untouched: training checks use a copy) and a sample of
    ``data`` (the training images); return a `Report` (``report.ok``, ``str(report)``). Accuracy is
    judged in inference mode on held-out images: ``val`` when given, else images of ``data`` apart
    from the sample; a trained model at chance there is never healthy, and a BatchNorm model whose
    inference predictions collapse gets the cure measured on a copy (`recalibrate_batchnorm`).
    ``sweep=True`` adds the learning-rate sweep (slower). ``trials=True`` tries each candidate fix
    on a fresh copy for ``trial_steps`` steps on the same ``trial_images`` images
    (`facekit.diagnose.trials`) and ranks the suggestions by the held-out accuracy each reaches;
    without it the suggestions come from rules. ``seed`` draws the trials' fresh weights, image
    sample and batches (the same seed, the same trials). ``budget`` (seconds for the whole doctor)
    caps the trials: they share what the checks left, each the steps that affords, at least 10 and at
    most ``trial_steps`` (`facekit.diagnose.try_fixes`).

    Taught in chapter 04, section 1."""
    start = time.perf_counter()
    patient = admit(model, data, val, n)
    model, x, y, fit_part, held, what = (patient.model, patient.x, patient.y, patient.fit_part,
                                         patient.held, patient.what)
    name = model.name if not patient.note else f"{model.name}, {patient.note}"
    first = _before_anything(model, x)
    if first is not None:  # nothing else the doctor measures means anything until this is fixed
        return Report(name, [first], [], [first.values["advice"]], [], [first.values["advice"]])
    matched = measure.loss_matches_outputs(model, (x, y))
    run = [] if matched.ok else [matched]
    run += [measure.loss_at_init(model, (x, y), n), measure.output_sensitivity(model, (x, y), n),
           measure.input_baseline(model, (x, y), n), measure.activation_report(model, (x, y), min(n, 32)),
           measure.gradient_report(model, (x, y), min(n, 32)),
           measure.overfit_one_batch(model, (x, y), 16, overfit_steps),
           mode_check(model, fit_part, held, what), held_out_check(model, held, what),
           labels_follow_images((patient.xa, patient.ya), patient.n_classes, seed=seed),
           class_balance(patient.ya, patient.n_classes)]
    if sweep:
        run.append(measure.lr_sweep(model, (x, y)))
    checks = {c.name: c for c in run}
    healthy = all(c.ok for c in run)
    rules = [] if healthy else _suggest(model, checks, x)
    mode = checks["inference mode"].values
    advice = [mode["advice"]] if "advice" in mode else []
    advice += [r for r in rules if r.startswith((_LOSS_FIRST, _SCALE_FIRST, _DATA_FIRST))
               and r in _first_findings(model, checks, x)]
    tried = [] if healthy or not trials else try_fixes(model, (patient.xa, patient.ya), steps=trial_steps,
                                                       n=trial_images, seed=seed, val=patient.val,
                                                       budget=_left(budget, start))
    return Report(name, run, checks["activations"].values.get("dying", []),
                  _measured(tried, rules, advice, _cut(tried, trial_steps)) if tried else rules, tried, rules,
                  trial_steps, budget)

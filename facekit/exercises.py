"""Self-checks for the exercise notebooks (``notebooks/exercises/``). Each checker runs the
student's piece on cases it knows the answer to and replies with a specific hint, never with
the answer itself.

    from facekit import exercises
    exercises.check_loss_at_init(loss_at_init)     # -> Feedback: "correct: ..." or "not yet: <hint>"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from facekit.text import wrap

__all__ = ["Feedback", "check_to_model_input", "check_loss_at_init", "check_question_network",
           "check_first_dying_layer", "check_one_change", "check_best_epoch", "check_augmentation",
           "check_augmentation_block"]


@dataclass
class Feedback:
    """A checker's reply: ``ok`` and a message (a hint when not ok). Shown as ``correct: ...`` or
    ``not yet: ...``, wrapped to the notebook's width under the message."""

    ok: bool
    message: str

    def __repr__(self) -> str:
        head = "correct: " if self.ok else "not yet: "
        return wrap(head + self.message, indent=len(head))

    def __bool__(self) -> bool:
        return self.ok


def _call(fn: Callable[..., Any], *args: Any) -> tuple[Any, Feedback | None]:
    """Run the student's function; a crash becomes a hint naming the exception."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, Feedback(False, "the function still raises NotImplementedError: write its body")
    except Exception as e:  # noqa: BLE001 - any student error becomes a hint
        return None, Feedback(False, f"calling it raised {type(e).__name__}: {e}")


# --- chapter 1: what enters the network -------------------------------------------------------

def _bgr_test_image(size: int = 20) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    img[:, : size // 2] = (255, 0, 0)   # left half pure blue in OpenCV's BGR order
    img[:, size // 2:] = (0, 0, 255)    # right half pure red
    return img


def check_to_model_input(fn: Callable[[np.ndarray, int], np.ndarray]) -> Feedback:
    """``fn(bgr_image, size)`` must return what facekit feeds a model: RGB order, uint8,
    shape (size, size, 3)."""
    out, err = _call(fn, _bgr_test_image(), 10)
    if err is not None:
        return err
    if out is None:
        return Feedback(False, "it returns None: return the converted image")
    out = np.asarray(out)
    if out.ndim != 3 or out.shape != (10, 10, 3):
        return Feedback(False, f"for size=10 the result should be 10 x 10 with 3 channels; found shape "
                               f"{out.shape}")
    if out.dtype != np.uint8:
        extra = " (X/255.0 gives float64: 8 bytes a pixel)" if out.dtype == np.float64 else ""
        return Feedback(False, f"the result is {out.dtype}{extra}; keep the bytes as uint8 and let the "
                               "model rescale inside (a Rescaling layer)")
    left, right = out[:, :3].reshape(-1, 3).mean(0), out[:, -3:].reshape(-1, 3).mean(0)

    def near(v: np.ndarray, rgb: tuple[int, int, int]) -> bool:
        return bool(np.all(np.abs(v - np.array(rgb)) < 40))

    if near(left, (255, 0, 0)) and near(right, (0, 0, 255)):
        return Feedback(False, "the test image is blue on the left and red on the right, but yours is "
                               "red on the left: OpenCV loads channels in BGR order, models and "
                               "matplotlib expect RGB")
    if not (near(left, (0, 0, 255)) and near(right, (255, 0, 0))):
        return Feedback(False, "the colours changed more than a resize explains: the test image is pure "
                               "blue on the left and pure red on the right")
    return Feedback(True, "RGB order, uint8, the requested size: exactly what facekit's loaders return")


# --- chapter 2: the loss of a network that guesses --------------------------------------------

def check_loss_at_init(fn: Callable[[int], float]) -> Feedback:
    """``fn(n_classes)`` must return the cross-entropy (Keras' loss) of a network that gives every
    class the same probability."""
    for c in (2, 3, 8, 10, 100):
        got, err = _call(fn, c)
        if err is not None:
            return err
        if got is None:
            return Feedback(False, f"loss_at_init({c}) returned None: return a number (the loss, in nats)")
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Feedback(False, f"loss_at_init({c}) returned {type(got).__name__}, not a number")
        want = math.log(c)
        if math.isclose(got, want, rel_tol=1e-6):
            continue
        if math.isclose(got, 1 / c, rel_tol=1e-6):
            return Feedback(False, f"for {c} classes you returned 1/{c}: that is the *accuracy* of "
                                   "guessing; the loss is the cross-entropy of the probability given to "
                                   "the true class")
        if math.isclose(got, -want, rel_tol=1e-6):
            return Feedback(False, "right size, wrong sign: cross-entropy is minus the log of a "
                                   "probability, and a probability below 1 has a negative log")
        if math.isclose(got, math.log10(c), rel_tol=1e-6) or math.isclose(got, math.log2(c), rel_tol=1e-6):
            return Feedback(False, "Keras' cross-entropy uses the natural logarithm (nats), "
                                   "not log10 or log2")
        return Feedback(False, f"for {c} classes you returned {got:.4g}; think of the probability a "
                               "guessing network gives the true class, then of the cross-entropy of it")
    return Feedback(True, "a network that has learned nothing starts at this loss; the question's "
                          "stayed there for 50 epochs")


# --- chapter 2: the question's network, written in Keras ------------------------------------------

_QUESTION_CASES = (((100, 100, 3), 8, 16), ((128, 128, 3), 4, 32))


def check_question_network(fn: Callable[[tuple[int, int, int], int, int], keras.Model]) -> Feedback:
    """``fn(input_shape, n_classes, filters)`` must build the question's network from its description
    (as `facekit.models.question_model` does): the same layer types, output shapes and parameter
    counts, in order. Checked at two sizes; hints name what differs, not what to write."""
    from facekit.models import architecture, question_model

    for shape, n, f in _QUESTION_CASES:
        mine, err = _call(fn, shape, n, f)
        if err is not None:
            return err
        if not isinstance(mine, keras.Model):
            return Feedback(False, f"return the keras model; found {type(mine).__name__}")
        ref = question_model(shape, n, f)
        a, b = [t for t, _, _ in architecture(mine)], [t for t, _, _ in architecture(ref)]
        where = f"for input {shape}, {n} classes, {f} filters"
        for kind, what in (("Conv2D", "convolutions"), ("MaxPooling2D", "poolings"),
                           ("Dropout", "Dropout layers"), ("Dense", "Dense layers")):
            if a.count(kind) != b.count(kind):
                return Feedback(False, f"{where} yours has {a.count(kind)} {what}; count them again in the "
                                       "description")
        if "Rescaling" not in a:
            return Feedback(False, "the images arrive as uint8 (0-255): add the rescaling to 0-1 as the "
                                   "model's first layer")
        convs = [la for la in mine.layers if isinstance(la, keras.layers.Conv2D)]
        if any(tuple(c.kernel_size) != (2, 2) for c in convs):
            return Feedback(False, "check the kernel size of your convolutions against the description")
        if any(c.padding != "valid" for c in convs):
            return Feedback(False, "the question's maps shrink by one pixel at every conv; yours keep "
                                   "their size: check the padding")
        if any(c.filters != f for c in convs):
            return Feedback(False, f"every conv should have `filters` ({f}) filters")
        if any(c.activation is not keras.activations.relu for c in convs):
            return Feedback(False, "every conv in the question has a ReLU activation")
        drops = [la.rate for la in mine.layers if isinstance(la, keras.layers.Dropout)]
        if any(abs(r - 0.4) > 1e-9 for r in drops):
            return Feedback(False, f"your Dropout rates are {drops}; the description gives one rate")
        out = mine.layers[-1]
        if getattr(out, "activation", None) is not keras.activations.softmax or out.units != n:
            return Feedback(False, f"the last layer gives one probability per class ({n}): units and "
                                   "activation")
        if a != b:
            k = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y) + 1
            return Feedback(False, f"all the layers are there, but the order differs from layer {k} on: "
                                   "compare block by block with the description")
        for k, (x, y) in enumerate(zip(architecture(mine), architecture(ref)), 1):
            if x != y:
                return Feedback(False, f"{where} layer {k} ({x[0]}) outputs {x[1]}, the question's {y[1]}")
    return Feedback(True, "the question's network, layer for layer, at two sizes: now you can change "
                          "one thing at a time")


# --- chapter 3: where the signal dies ---------------------------------------------------------

def _stats(rms: list[float], dead: list[float]) -> list:
    from facekit.diagnose import LayerStats

    return [LayerStats(f"conv{i + 1}", 0.0, r, r, 0.0, 0.0, d) for i, (r, d) in enumerate(zip(rms, dead))]


_DYING_CASES = (  # (RMS per layer, dead share per layer, the first dying layer)
    ([1.0, 0.5, 0.2, 0.08, 0.01], [0.0, 0.0, 0.1, 0.3, 0.6], "conv4"),
    ([0.3, 0.3, 0.25, 0.2, 0.2], [0.0, 0.1, 0.7, 0.2, 0.1], "conv3"),
    ([1.0, 0.9, 0.8, 0.7, 0.6], [0.0, 0.0, 0.0, 0.1, 0.1], None),
    ([0.05, 0.004, 0.001, 0.001, 0.001], [0.0, 0.2, 0.9, 0.9, 0.9], "conv2"),
)


def check_first_dying_layer(fn: Callable[[list], str | None]) -> Feedback:
    """``fn(stats)`` gets one `facekit.diagnose.LayerStats` per layer (in order) and must return
    the name of the first layer where the signal has died - RMS below 0.1 x the first layer's, or
    more than half of the channels dead - or None when none has."""
    for rms, dead, want in _DYING_CASES:
        stats = _stats(rms, dead)
        got, err = _call(fn, stats)
        if err is not None:
            return err
        if got == want:
            continue
        names = [s.name for s in stats]
        if want is None:
            return Feedback(False, f"in a healthy network (RMS {rms}) you returned {got!r}: when no "
                                   "layer has died, return None")
        if got is None:
            return Feedback(False, f"with RMS {rms} and dead shares {dead} some layer has died, but you "
                                   "returned None: check both rules (RMS below 0.1 x the first layer's, "
                                   "more than half the channels dead)")
        if got not in names:
            return Feedback(False, f"return a layer's name (the .name of a LayerStats), e.g. 'conv1'; "
                                   f"found {got!r}")
        s = stats[names.index(got)]
        if names.index(got) > names.index(want):
            return Feedback(False, f"{got} has died, but an earlier layer already had: return the first")
        ratio = s.rms / stats[0].rms
        return Feedback(False, f"at {got} the RMS is {ratio:.2f} of the first layer's and {s.dead:.0%} "
                               "of its channels are dead: it still carries signal. Check both rules "
                               "(RMS below 0.1 x the first layer's, more than half the channels dead)")
    return Feedback(True, "that is the rule `facekit.diagnose.activation_report` uses")


# --- chapter 4: one change that lets the question's network learn ----------------------------

def check_one_change(change: dict[str, Any], profile: str = "ci", epochs: int | None = None,
                     seed: int = 0) -> Feedback:
    """``change`` is one keyword argument of `facekit.models.question_model`, e.g.
    ``{"learning_rate": 1e-2}``. The question's network with that change is trained on the
    profile's data (seed 0, a stuck seed); it passes when it no longer sits at ln 8."""
    import inspect

    from facekit.models import question_model
    from facekit.profiles import get_profile, load_profile_data
    from facekit.train import fit

    if not isinstance(change, dict) or not change:
        return Feedback(False, "change nothing and the network stays at ln 8: give one keyword "
                               "argument of question_model, as a dict")
    if len(change) > 1:
        return Feedback(False, f"you changed {len(change)} things ({', '.join(change)}): change one at a "
                               "time, or you will not know which one mattered")
    key, value = next(iter(change.items()))
    allowed = [p for p in inspect.signature(question_model).parameters
               if p not in ("input_shape", "n_classes", "seed")]
    if key not in allowed:
        return Feedback(False, f"question_model has no argument {key!r}; it takes {', '.join(allowed)}")
    prof = get_profile(profile)
    train, val = load_profile_data(prof, seed=seed)
    try:
        model = question_model(prof.input_shape, train.n_classes, **{"filters": prof.filters, **change},
                               seed=seed)
    except Exception as e:  # noqa: BLE001
        return Feedback(False, f"question_model(..., {key}={value!r}) raised {type(e).__name__}: {e}")
    h = fit(model, train, val, epochs=epochs or prof.epochs, batch_size=prof.batch_size, seed=seed)
    if h.stuck:
        why = {"padding": "padding keeps the maps larger but the signal still shrinks layer by layer",
               "use_bias": "the bias was never the problem",
               "optimizer": "the gradients reaching the early layers are tiny whatever the optimizer",
               }.get(key, "the signal still vanishes before it reaches the output")
        return Feedback(False, f"with {key}={value!r} the loss still sits at ln 8 after {len(h.epochs)} "
                               f"epochs: {why}. Chapter 4's doctor ranked its suggestions: try one of those")
    return Feedback(True, f"with {key}={value!r} the network is no longer stuck: its loss leaves ln 8 on "
                          "a seed where the question's network stays there (whether it then learns - "
                          "held-out accuracy in inference mode - is chapter 4's section 4)")


# --- chapter 5: a callback that remembers the best epoch ------------------------------------------

_EPOCH_LOGS = ({"loss": 2.0, "val_loss": 1.00}, {"loss": 1.5, "val_loss": 0.80},
               {"loss": 1.0, "val_loss": 0.70}, {"loss": 0.6, "val_loss": 0.90},
               {"loss": 0.4, "val_loss": 0.95}, {"loss": 0.2, "val_loss": 0.85})


def check_best_epoch(callback_class: type) -> Feedback:
    """``callback_class()`` must be a `keras.callbacks.Callback` that, during ``fit``, keeps in
    ``best_epoch`` the epoch (counted from 1, as Keras prints them) with the lowest validation loss
    and in ``best_val_loss`` that loss. Fed six epochs of known logs."""
    cb, err = _call(callback_class)
    if err is not None:
        return err
    if not isinstance(cb, keras.callbacks.Callback):
        return Feedback(False, f"subclass keras.callbacks.Callback; {type(cb).__name__} is not one")
    try:
        cb.on_train_begin({})
        for epoch, logs in enumerate(_EPOCH_LOGS):
            cb.on_epoch_begin(epoch, {})
            cb.on_epoch_end(epoch, dict(logs))
        cb.on_train_end({})
    except NotImplementedError:
        return Feedback(False, "on_epoch_end still raises NotImplementedError: write its body")
    except Exception as e:  # noqa: BLE001 - any student error becomes a hint
        return Feedback(False, f"during training it raised {type(e).__name__}: {e}")
    if not hasattr(cb, "best_epoch") or not hasattr(cb, "best_val_loss"):
        return Feedback(False, "after training, the callback needs the attributes best_epoch and "
                               "best_val_loss (set them in on_epoch_end)")
    got = cb.best_epoch
    if got == 3 and math.isclose(float(cb.best_val_loss), 0.70):
        return Feedback(True, "your callback found the epoch where validation loss was lowest; "
                              "keras.callbacks.EarlyStopping(restore_best_weights=True) keeps that epoch's "
                              "weights")
    if got == 2:
        return Feedback(False, "one epoch early: Keras numbers epochs from 0 in on_epoch_end, but people "
                               "(and Keras' log) count from 1")
    if got == 6:
        return Feedback(False, "that is where the *training* loss is lowest: it falls every epoch; the "
                               "question is when the loss on unseen images stops falling")
    if got == 1:
        return Feedback(False, "that epoch has the highest validation loss: keep the lowest")
    if got == 3:
        return Feedback(False, f"the right epoch, but best_val_loss is {cb.best_val_loss!r}: store that "
                               "epoch's validation loss")
    return Feedback(False, f"best_epoch is {got!r} after six epochs; compare each epoch's logs['val_loss'] "
                           "with the best so far")


# --- chapter 6: augmentation ------------------------------------------------------------------

def check_augmentation(model: keras.Model, image_size: int = 64) -> Feedback:
    """``model`` must contain augmentation layers (keras.layers.Random*) that change the images in
    training and leave predictions unchanged at inference."""
    def walk(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
        yield layer
        for sub in getattr(layer, "layers", []):
            yield from walk(sub)

    if not isinstance(model, keras.Model):
        return Feedback(False, f"pass a keras.Model; found {type(model).__name__}")
    random_layers = [la for la in walk(model) if type(la).__name__.startswith("Random")]
    if not random_layers:
        return Feedback(False, "no augmentation layers in this model: Keras has a family of "
                               "keras.layers.Random... layers; put them right after the input")
    x = np.random.default_rng(0).integers(0, 256, (4, image_size, image_size, 3), dtype=np.uint8)
    if not np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0)):
        return Feedback(False, "predictions change between two calls at inference: augmentation (and "
                               "dropout) must only act in training (training=True)")
    a, b = np.asarray(model(x, training=True)), np.asarray(model(x, training=True))
    if np.allclose(a, b):
        return Feedback(False, f"found {', '.join(type(la).__name__ for la in random_layers)} but the "
                               "training outputs do not change between calls: are the factors zero?")
    kinds = sorted({type(la).__name__ for la in random_layers})
    return Feedback(True, f"{len(kinds)} kinds of augmentation ({', '.join(kinds)}), active in training "
                          "only; now train it and compare validation accuracy with the answer's")


def check_augmentation_block(block: Any, image_size: int = 64) -> Feedback:
    """``block`` must be augmentation you wrote: a Keras layer (e.g. a Sequential) of at least two
    kinds of ``keras.layers.Random*`` layers that keeps the image's shape, changes images in training
    and passes them through unchanged at inference."""
    if block is True or getattr(block, "facekit_made", False):
        return Feedback(False, "that is facekit's ready-made augmentation: write your own block of "
                               "keras.layers.Random... layers")
    if not isinstance(block, keras.layers.Layer):
        return Feedback(False, "pass a Keras layer, e.g. keras.Sequential([...]); found "
                               f"{type(block).__name__}")
    layers_ = list(getattr(block, "layers", [block]))
    kinds = sorted({type(la).__name__ for la in layers_ if type(la).__name__.startswith("Random")})
    if len(kinds) < 2:
        found = ", ".join(kinds) or "none"
        kind = "kind" if len(kinds) == 1 else "kinds"
        return Feedback(False, f"found {len(kinds)} {kind} of Random... layer ({found}): a face can also "
                               "be seen turned, shifted, closer or in other light; use at least two kinds")
    x = np.random.default_rng(0).integers(0, 256, (4, image_size, image_size, 3)).astype("float32")
    try:
        trained, again, infer = (np.asarray(block(x, training=True)), np.asarray(block(x, training=True)),
                                 np.asarray(block(x, training=False)))
    except Exception as e:  # noqa: BLE001
        return Feedback(False, f"calling it on a batch raised {type(e).__name__}: {e}")
    if trained.shape != x.shape:
        return Feedback(False, f"it turns {x.shape[1:]} images into {trained.shape[1:]}: the network "
                               "after it expects the original size")
    if np.allclose(trained, again):
        return Feedback(False, "two training calls give the same images: are the factors zero?")
    if not np.allclose(infer, x):
        return Feedback(False, "at inference it still changes the images: augmentation must act in "
                               "training only")
    return Feedback(True, f"{len(kinds)} kinds ({', '.join(kinds)}), active in training only; put it "
                          "in the model and train")

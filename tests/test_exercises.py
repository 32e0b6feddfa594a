"""facekit.exercises: every solution passes, blanks and typical mistakes get a specific hint,
and no hint gives the answer away."""

from __future__ import annotations

import math

import cv2

from facekit import exercises as ex
from facekit.models import answer_model, improved_model


def _blank(*args):
    raise NotImplementedError


def test_to_model_input():
    def solution(bgr, size):
        return cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA)

    assert ex.check_to_model_input(solution).ok
    assert "NotImplementedError" in ex.check_to_model_input(_blank).message
    bgr = ex.check_to_model_input(lambda img, size: cv2.resize(img, (size, size)))
    assert not bgr and "BGR" in bgr.message
    floats = ex.check_to_model_input(lambda img, size: solution(img, size) / 255.0)
    assert not floats and "float64" in floats.message and "uint8" in floats.message
    shape = ex.check_to_model_input(lambda img, size: cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    assert not shape and "(20, 20, 3)" in shape.message
    for fb in (bgr, floats, shape):
        assert "cvtColor" not in fb.message and "COLOR_BGR2RGB" not in fb.message


def test_loss_at_init():
    assert ex.check_loss_at_init(lambda c: math.log(c)).ok
    assert repr(ex.check_loss_at_init(lambda c: math.log(c))).startswith("correct: ")
    hints = {
        "accuracy": ex.check_loss_at_init(lambda c: 1 / c),
        "natural": ex.check_loss_at_init(lambda c: math.log10(c)),
        "sign": ex.check_loss_at_init(lambda c: -math.log(c)),
        "None": ex.check_loss_at_init(lambda c: None),
        "NotImplementedError": ex.check_loss_at_init(_blank),
        "returned 0.7": ex.check_loss_at_init(lambda c: 0.7),
    }
    for word, fb in hints.items():
        assert not fb.ok and word in fb.message, (word, fb.message)
        assert repr(fb).startswith("not yet: ")
        assert "log(" not in fb.message and "2.079" not in fb.message and "0.693" not in fb.message


def _first_dying(stats, collapse=0.1, dead_limit=0.5):
    first = stats[0].rms
    return next((s.name for s in stats if s.rms < collapse * first or s.dead > dead_limit), None)


def test_first_dying_layer():
    assert ex.check_first_dying_layer(_first_dying).ok
    rms_only = ex.check_first_dying_layer(lambda st: next((s.name for s in st if s.rms < 0.1 * st[0].rms),
                                                          None))
    assert not rms_only and "both rules" in rms_only.message
    last = ex.check_first_dying_layer(lambda st: st[-1].name)
    assert not last and "return the first" in last.message and "conv4" not in last.message
    none = ex.check_first_dying_layer(lambda st: None)
    assert not none and "returned None" in none.message
    always = ex.check_first_dying_layer(lambda st: _first_dying(st) or "conv1")
    assert not always and "return None" in always.message
    assert "NotImplementedError" in ex.check_first_dying_layer(_blank).message


def test_one_change_rejects_non_changes_without_training():
    assert "change nothing" in ex.check_one_change({}).message
    two = ex.check_one_change({"batch_norm": True, "learning_rate": 1e-4})
    assert not two and "one at a time" in two.message
    bad = ex.check_one_change({"init": "he"})
    assert not bad and "no argument 'init'" in bad.message and "kernel_initializer" in bad.message


def test_one_change_trains_and_explains():
    assert ex.check_one_change({"batch_norm": True}).ok
    still = ex.check_one_change({"padding": "same"})
    assert not still and "ln 8" in still.message and "padding" in still.message


def test_augmentation():
    assert ex.check_augmentation(improved_model((32, 32, 3), seed=0), image_size=32).ok
    none = ex.check_augmentation(answer_model((32, 32, 3), dropout=0.5), image_size=32)
    assert not none and "no augmentation layers" in none.message
    assert "keras.Model" in ex.check_augmentation("a model", image_size=32).message


def _question_net(shape, n, f, first_block=1, padding="valid", rescale=True):
    from keras import Input, Sequential, layers

    def conv():
        return layers.Conv2D(f, (2, 2), activation="relu", padding=padding)

    def pool():
        return layers.MaxPooling2D((2, 2))

    def block(k, drop):
        return [conv() for _ in range(k)] + ([layers.Dropout(0.4)] if drop else []) + [pool()]

    head = [layers.Rescaling(1 / 255)] if rescale else []
    body = block(first_block, False) + block(3, False) + block(2, True) + block(2, True) + block(2, True)
    return Sequential([Input(shape), *head, *body, layers.Flatten(), layers.Dense(n, activation="softmax")])


def test_question_network():
    assert ex.check_question_network(_question_net).ok
    assert "NotImplementedError" in ex.check_question_network(_blank).message
    check = ex.check_question_network
    hints = {"9 convolutions": check(lambda s, n, f: _question_net(s, n, f, first_block=0)),
             "padding": ex.check_question_network(lambda s, n, f: _question_net(s, n, f, padding="same")),
             "rescaling": ex.check_question_network(lambda s, n, f: _question_net(s, n, f, rescale=False))}
    for word, fb in hints.items():
        assert not fb and word in fb.message, (word, fb.message)
        assert "Conv2D(" not in fb.message and "'valid'" not in fb.message  # the hint, not the answer


def test_best_epoch():
    import keras

    class Right(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.best_epoch, self.best_val_loss = None, float("inf")

        def on_epoch_end(self, epoch, logs=None):
            if logs["val_loss"] < self.best_val_loss:
                self.best_epoch, self.best_val_loss = epoch + 1, logs["val_loss"]

    class OffByOne(Right):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if logs["val_loss"] == self.best_val_loss:
                self.best_epoch -= 1

    class TrainingLoss(Right):
        def on_epoch_end(self, epoch, logs=None):
            if logs["loss"] < self.best_val_loss:
                self.best_epoch, self.best_val_loss = epoch + 1, logs["loss"]

    assert ex.check_best_epoch(Right).ok
    off = ex.check_best_epoch(OffByOne)
    assert not off and "from 0" in off.message
    train = ex.check_best_epoch(TrainingLoss)
    assert not train and "training" in train.message
    assert "Callback" in ex.check_best_epoch(object).message
    for fb in (off, train):
        assert "epoch + 1" not in fb.message and "val_loss <" not in fb.message


def test_augmentation_block():
    from keras import Sequential, layers

    from facekit.models import augmentation

    mine = Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.05)])
    assert ex.check_augmentation_block(mine, image_size=32).ok
    assert ex.check_augmentation(answer_model((32, 32, 3), augment=mine), image_size=32).ok
    ready = ex.check_augmentation_block(augmentation(), image_size=32)
    assert not ready and "ready-made" in ready.message
    assert "ready-made" in ex.check_augmentation_block(True).message
    one = ex.check_augmentation_block(Sequential([layers.RandomFlip("horizontal")]), image_size=32)
    assert not one and "two kinds" in one.message
    crop = ex.check_augmentation_block(Sequential([layers.RandomCrop(16, 16), layers.RandomFlip()]),
                                       image_size=32)
    assert not crop and "original size" in crop.message

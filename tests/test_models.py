"""facekit.models: exact parameter counts, the minimum-size error, the one-change variants."""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np
import pytest

from facekit.models import (
    VARIANTS,
    answer_model,
    improved_model,
    question_min_size,
    question_model,
    question_variant,
)


def test_parameter_counts_match_the_seed():
    assert question_model().count_params() == 2_397_704
    assert answer_model().count_params() == 20_508_968


def test_question_model_is_the_questions_network_layer_for_layer():
    m = question_model((100, 100, 3), filters=32)
    convs = [la for la in m.layers if isinstance(la, keras.layers.Conv2D)]
    assert len(convs) == 10 and all(c.kernel_size == (2, 2) and c.padding == "valid" for c in convs)
    assert all(c.activation.__name__ == "relu" for c in convs)
    assert sum(isinstance(la, keras.layers.MaxPooling2D) for la in m.layers) == 5
    assert [la.rate for la in m.layers if isinstance(la, keras.layers.Dropout)] == [0.4] * 3
    assert m.layers[-1].activation.__name__ == "softmax"
    assert isinstance(m.optimizer, keras.optimizers.Adam)
    assert float(m.optimizer.learning_rate) == pytest.approx(1e-3)


def test_minimum_input_size_is_95_and_the_error_says_why():
    assert question_min_size() == 95
    question_model((95, 95, 3), filters=4)
    with pytest.raises(ValueError) as e:
        question_model((94, 94, 3), filters=4)
    said = " ".join(str(e.value).split())  # the message is wrapped to the notebook's width
    assert re.search(r"94x94 is too small .* at least 95x95 \(10 valid 2x2 convs", said), said


def test_models_take_uint8_images_and_emit_no_input_shape_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = question_model((96, 96, 3), filters=8)
        a = answer_model((32, 32, 3))
    assert not [w for w in caught if "input_shape" in str(w.message)]
    x = np.full((2, 96, 96, 3), 255, np.uint8)
    p = q.predict(x, verbose=0)
    assert p.shape == (2, 8) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert a.predict(x[:, :32, :32], verbose=0).shape == (2, 8)


def test_seed_gives_identical_initial_weights():
    w1 = question_model((96, 96, 3), filters=8, seed=3).get_weights()
    w2 = question_model((96, 96, 3), filters=8, seed=3).get_weights()
    w3 = question_model((96, 96, 3), filters=8, seed=4).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    assert not np.array_equal(w1[0], w3[0])


def _convs(m):
    return [la for la in m.layers if isinstance(la, keras.layers.Conv2D)]


def test_each_variant_changes_exactly_its_one_thing():
    shape, f = (100, 100, 3), 32
    base = question_variant("question", shape, 8, f)
    v = {name: question_variant(name, shape, 8, f) for name in VARIANTS}
    assert set(VARIANTS) >= {"he_init", "batch_norm", "fewer_layers", "padding_same", "lr_1e-4",
                             "first_5x5", "growing_filters"}
    assert type(_convs(v["he_init"])[3].kernel_initializer).__name__ == "HeNormal"
    assert type(_convs(base)[3].kernel_initializer).__name__ == "GlorotUniform"
    assert sum(isinstance(la, keras.layers.BatchNormalization) for la in v["batch_norm"].layers) == 10
    assert len(_convs(v["fewer_layers"])) == 5
    assert all(c.padding == "same" for c in _convs(v["padding_same"]))
    assert float(v["lr_1e-4"].optimizer.learning_rate) == pytest.approx(1e-4)
    first = _convs(v["first_5x5"])[0]
    assert (first.filters, first.kernel_size) == (16, (5, 5)) and _convs(v["first_5x5"])[1].filters == f
    widths = [c.filters for c in _convs(v["growing_filters"])]
    assert widths == sorted(widths) and widths[-1] == f and widths[0] < f
    assert not any(c.use_bias for c in _convs(v["no_bias"]))
    with pytest.raises(ValueError, match="unknown variant"):
        question_variant("dropout_everywhere")


def test_answer_model_changes_and_improved_model_parameter_counts():
    shape = (64, 64, 3)
    assert answer_model(shape).count_params() == 2_126_120  # 97% in Flatten -> Dense(512)
    gap = answer_model(shape, head="gap")
    assert gap.count_params() == 24_872 and not any(la.name == "dense" for la in gap.layers)
    assert isinstance(gap.get_layer("gap"), keras.layers.GlobalAveragePooling2D)
    bn = answer_model(shape, batch_norm=True)
    assert sum(isinstance(la, keras.layers.BatchNormalization) for la in bn.layers) == 3
    wd = answer_model(shape, weight_decay=1e-3)
    assert all(la.kernel_regularizer is not None for la in wd.layers if hasattr(la, "kernel"))
    assert answer_model(shape, dropout=0.5).get_layer("dropout").rate == 0.5
    with pytest.raises(ValueError, match="head must be"):
        answer_model(shape, head="mlp")
    imp = improved_model(shape)
    assert imp.count_params() <= answer_model(shape).count_params() / 10
    assert imp.get_layer("augment") is not None


def test_augmentation_changes_training_batches_only():
    model = improved_model((64, 64, 3), seed=0)
    x = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    aug = model.get_layer("augment")
    xf = x.astype("float32") / 255
    assert np.array_equal(np.asarray(aug(xf, training=False)), xf)
    assert not np.allclose(np.asarray(aug(xf, training=True)), xf)
    p1, p2 = model.predict(x, verbose=0), model.predict(x, verbose=0)
    assert np.array_equal(p1, p2)  # inference is deterministic: no augmentation, no dropout


def test_compile_like_question_rejects_an_unknown_optimizer():
    from facekit.models import compile_like_question

    model = question_model((96, 96, 3), 8, filters=8, optimizer="sgd")
    assert type(model.optimizer).__name__ == "SGD"
    with pytest.raises(ValueError, match="optimizer must be one of"):
        compile_like_question(model, optimizer="rmsprop")

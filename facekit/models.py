"""The question's network, the answer's network, and one-change variants of the question's.

Every builder starts from ``keras.Input``, rescales uint8 pixels inside the model (so data stays
uint8 until the first layer) and returns a compiled model: Adam, sparse categorical
cross-entropy on softmax outputs, accuracy - as in the question.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from facekit.text import ROOM, wrap

__all__ = ["question_model", "answer_model", "improved_model", "augmentation", "question_variant",
           "VARIANTS", "question_min_size", "compile_like_question", "architecture", "same_architecture"]

# The question's blocks: conv layers per block; Dropout(0.4) after blocks 3-5; a MaxPool after each.
_QUESTION_BLOCKS = (1, 3, 2, 2, 2)
_DROPOUT_AFTER = (2, 3, 4)


def compile_like_question(model: keras.Model, learning_rate: float = 1e-3,
                          optimizer: str = "adam") -> keras.Model:
    """Compile as the question did: Adam (lr 1e-3), sparse categorical cross-entropy, accuracy.
    ``optimizer``: 'adam', 'sgd' (plain SGD) or 'momentum' (SGD with momentum 0.9)."""
    optimizers: dict[str, Callable[[float], keras.optimizers.Optimizer]] = {
        "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
        "momentum": lambda lr: keras.optimizers.SGD(lr, momentum=0.9)}
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}; found {optimizer!r}")
    opt = optimizers[optimizer](learning_rate)
    model.compile(optimizer=opt,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
                  metrics=["accuracy"], jit_compile=False)
    return model


def _spatial_trace(size: int, blocks: tuple[int, ...], kernel: int, padding: str,
                   first_kernel: int) -> list[int]:
    """Feature-map side after each block (conv stack, then 2x2 max-pooling)."""
    sides, s = [], size
    for b, n_conv in enumerate(blocks):
        for i in range(n_conv):
            k = first_kernel if (b == 0 and i == 0) else kernel
            if padding == "valid":
                s -= k - 1
        s //= 2
        sides.append(s)
    return sides


def question_min_size(blocks: tuple[int, ...] = _QUESTION_BLOCKS, padding: str = "valid",
                      kernel: int = 2, first_kernel: int = 2) -> int:
    """Smallest input side the network accepts (95 px for the question's network)."""
    size = 1
    while min(_spatial_trace(size, blocks, kernel, padding, first_kernel)) < 1:
        size += 1
    return size


def question_model(input_shape: tuple[int, int, int] = (200, 200, 3), n_classes: int = 8,
                   filters: int | tuple[int, ...] = 256, *,
                   kernel_initializer: str = "glorot_uniform", batch_norm: bool = False,
                   blocks: tuple[int, ...] = _QUESTION_BLOCKS, padding: str = "valid",
                   first_layer: tuple[int, int] | None = None, use_bias: bool = True,
                   learning_rate: float = 1e-3, optimizer: str = "adam", dropout: float = 0.4,
                   bn_momentum: float = 0.99, seed: int | None = None) -> keras.Model:
    """The question's network, layer for layer: 2,397,704 parameters at the defaults.

    Rescaling(1/255) -> Conv2D(F, 2x2, relu) -> MaxPool -> 3x Conv2D -> MaxPool -> 2x Conv2D ->
    Dropout(0.4) -> MaxPool -> (2x Conv2D -> Dropout(0.4) -> MaxPool) x2 -> Flatten ->
    Dense(n_classes, softmax). All convs 2x2, 'valid' padding, Glorot-uniform init (Keras' default).

    The keyword arguments are the one-change variants: ``filters`` (one width, or one per block),
    ``kernel_initializer`` ('he_normal'), ``batch_norm`` (Conv -> BN -> ReLU), ``blocks`` (convs per
    block, e.g. (1, 1, 1, 1, 1)), ``padding`` ('same'), ``first_layer`` ((filters, kernel), e.g. the
    answer's (16, 5)), ``use_bias``, ``learning_rate``, ``optimizer`` ('adam', 'sgd' or 'momentum'),
    ``dropout`` (the rate of the three Dropout layers; 0 leaves them out), ``bn_momentum`` (the
    BatchNorm layers' moving-average momentum, Keras' 0.99 by default). ``seed`` makes the initial
    weights reproducible.

    Taught in chapter 02, section 3.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    widths = (filters,) * len(blocks) if isinstance(filters, int) else tuple(filters)
    if len(widths) != len(blocks):
        raise ValueError(f"filters must be one int or one per block ({len(blocks)}); found {filters}")
    first_filters, first_kernel = first_layer or (widths[0], 2)
    h, w = input_shape[:2]
    need = question_min_size(tuple(blocks), padding, 2, first_kernel)
    if min(h, w) < need:
        n_conv = sum(blocks)
        raise ValueError(wrap(
            f"input {h}x{w} is too small for question_model: it needs at least {need}x{need} "
            f"({n_conv} {padding} 2x2 convs and {len(blocks)} poolings)", room=ROOM))

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    k = 0
    for b, n_conv in enumerate(blocks):
        for i in range(n_conv):
            k += 1
            first = b == 0 and i == 0
            conv = layers.Conv2D(first_filters if first else widths[b],
                                 first_kernel if first else 2,
                                 padding=padding, kernel_initializer=kernel_initializer,
                                 use_bias=use_bias and not batch_norm,
                                 activation=None if batch_norm else "relu", name=f"conv{k}")
            x = conv(x)
            if batch_norm:
                x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{k}")(x)
                x = layers.ReLU(name=f"relu{k}")(x)
        if b in _DROPOUT_AFTER and dropout:
            x = layers.Dropout(dropout, name=f"dropout{b + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{b + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs, name="question_net")
    return compile_like_question(model, learning_rate, optimizer)


def answer_model(input_shape: tuple[int, int, int] = (200, 200, 3), n_classes: int = 8, *,
                 filters: tuple[int, ...] = (16, 32, 64), augment: bool | keras.layers.Layer = False,
                 batch_norm: bool = False, head: str = "dense", dropout: float = 0.0,
                 weight_decay: float = 0.0, bn_momentum: float = 0.9, learning_rate: float = 1e-3,
                 seed: int | None = None) -> keras.Model:
    """The accepted answer's network: 20,508,968 parameters at the defaults.

    Rescaling(1/255) -> Conv2D(16, 5x5, same, relu) -> MaxPool -> Conv2D(32, 3x3) -> MaxPool ->
    Conv2D(64, 3x3) -> MaxPool -> Flatten -> Dense(512) (no activation, as in the answer) ->
    Dense(n_classes, softmax). 98% of its weights sit in the Flatten -> Dense(512) matrix.

    The keyword arguments are the changes chapter 06 measures one at a time: ``augment`` (True:
    `augmentation`'s random flip/rotation/zoom/translation/contrast layers; or your own Keras layer,
    e.g. a Sequential of ``Random*`` layers; active only in training), ``batch_norm``
    (Conv -> BN -> ReLU, BN momentum ``bn_momentum``), ``head`` ('dense' as in the answer;
    'flatten': Flatten -> Dense(n_classes); 'gap': GlobalAveragePooling -> Dense(n_classes)),
    ``dropout`` (before the classifier), ``weight_decay`` (L2 factor on every kernel), ``filters``
    (one conv block per entry; the first 5x5, the others 3x3). `improved_model` combines them.

    Taught in chapter 05, section 1.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    need = 2 ** len(filters)
    if min(input_shape[:2]) < need:
        raise ValueError(f"input {input_shape[0]}x{input_shape[1]} is too small for answer_model: "
                         f"it needs at least {need}x{need} ({len(filters)} poolings)")
    if head not in ("dense", "gap", "flatten"):
        raise ValueError(f"head must be 'dense', 'gap' or 'flatten'; found {head!r}")
    reg = keras.regularizers.L2(weight_decay) if weight_decay else None
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if isinstance(augment, keras.layers.Layer):
        x = augment(x)
    elif augment:
        x = augmentation(seed)(x)
    for i, (f, k) in enumerate(zip(filters, (5,) + (3,) * (len(filters) - 1)), 1):
        x = layers.Conv2D(f, k, padding="same", activation=None if batch_norm else "relu",
                          use_bias=not batch_norm, kernel_regularizer=reg, name=f"conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
            x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
        if head == "dense":
            x = layers.Dense(512, kernel_regularizer=reg, name="dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", kernel_regularizer=reg, name="output")(x)
    plain = not (augment or batch_norm or dropout or weight_decay) and head == "dense"
    model = keras.Model(inputs, outputs, name="answer_net" if plain else "answer_net_changed")
    return compile_like_question(model, learning_rate)


def augmentation(seed: int | None = None, flip: bool = True, rotation: float = 0.04,
                 zoom: float = 0.1, translation: float = 0.1, contrast: float = 0.2) -> keras.Sequential:
    """Random flip, rotation (fraction of a full turn), zoom, translation (fraction of the side)
    and contrast, as layers: they change the images in training only and pass them through
    unchanged at inference (``model.predict``, ``evaluate``)."""
    steps = ([layers.RandomFlip("horizontal", seed=seed)] if flip else []) + [
        layers.RandomRotation(rotation, fill_mode="reflect", seed=seed),
        layers.RandomZoom(zoom, fill_mode="reflect", seed=seed),
        layers.RandomTranslation(translation, translation, fill_mode="reflect", seed=seed),
        layers.RandomContrast(contrast, seed=seed)]
    block = keras.Sequential(steps, name="augment")
    block.facekit_made = True  # exercises.check_augmentation_block asks for a block you wrote
    return block


def improved_model(input_shape: tuple[int, int, int] = (64, 64, 3), n_classes: int = 8, *,
                   seed: int | None = None, **changes: Any) -> keras.Model:
    """The answer's network rebuilt to generalise: augmentation layers, four conv blocks
    (24/48/96/96 filters), Flatten -> Dropout(0.5) -> Dense(n_classes) with no 512-unit layer,
    L2 weight decay 1e-4. 149,144 parameters at 64 px (the answer's: 2,126,120). Train it with
    early stopping (`facekit.generalize.early_stopping`). Any keyword of `answer_model` overrides
    a default (BatchNorm and a GlobalAveragePooling head were measured too and did worse here:
    see chapter 06).

    Taught in chapter 06, section 4."""
    kwargs: dict[str, Any] = dict(filters=(24, 48, 96, 96), augment=True, batch_norm=False, head="flatten",
                  dropout=0.5, weight_decay=1e-4)
    kwargs.update(changes)
    model = answer_model(input_shape, n_classes, seed=seed, **kwargs)
    model.name = "improved_net"
    return model


def _growing(filters: int) -> tuple[int, ...]:
    return tuple(max(8, filters >> (4 - b)) for b in range(5))


# One change at a time: name -> (what changes, question_model keyword arguments given `filters`)
VARIANTS: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    "question": ("the question's network, unchanged", lambda f: {}),
    "he_init": ("He-normal initialisation instead of Glorot-uniform",
                lambda f: {"kernel_initializer": "he_normal"}),
    "batch_norm": ("BatchNormalization before every ReLU", lambda f: {"batch_norm": True}),
    "bn_no_dropout": ("BatchNormalization before every ReLU, the three Dropout layers removed",
                      lambda f: {"batch_norm": True, "dropout": 0.0}),
    "fewer_layers": ("5 convs (one per block) instead of 10", lambda f: {"blocks": (1, 1, 1, 1, 1)}),
    "lr_1e-4": ("Adam learning rate 1e-4 instead of 1e-3", lambda f: {"learning_rate": 1e-4}),
    "padding_same": ("answer claim 3: padding='same' instead of 'valid'",
                     lambda f: {"padding": "same"}),
    "first_5x5": ("answer claim 1: first layer 16 filters 5x5", lambda f: {"first_layer": (16, 5)}),
    "growing_filters": ("answer claim 2: filters grow with depth",
                        lambda f: {"filters": _growing(f)}),
    "no_bias": ("convolutions without bias", lambda f: {"use_bias": False}),
}


def question_variant(name: str, input_shape: tuple[int, int, int] = (200, 200, 3),
                     n_classes: int = 8, filters: int = 256, seed: int | None = None) -> keras.Model:
    """The question's network with the one change ``name`` (a key of `VARIANTS`).

    Taught in chapter 04, section 2."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
    kwargs = {"filters": filters, **VARIANTS[name][1](filters)}
    return question_model(input_shape, n_classes, seed=seed, **kwargs)


def architecture(model: keras.Model) -> list[tuple[str, tuple, int]]:
    """(layer type, output shape, parameter count) of every layer, names left out."""
    return [(type(layer).__name__, tuple(layer.output.shape), layer.count_params())
            for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def same_architecture(mine: keras.Model, reference: keras.Model, name: str | None = None) -> str:
    """Check a network typed in a notebook against facekit's builder: the same layer types, output
    shapes and parameter counts, in order. Returns one sentence; raises AssertionError naming the
    first layer that differs. ``name``: what to call the reference (default: its model name)."""
    name = name or reference.name
    a, b = architecture(mine), architecture(reference)
    for i, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            raise AssertionError(f"layer {i} differs: yours {x[0]} {x[1]} ({x[2]:,} parameters), "
                                 f"{name}'s {y[0]} {y[1]} ({y[2]:,} parameters)")
    if len(a) != len(b):
        raise AssertionError(f"yours has {len(a)} layers, {name} has {len(b)}")
    return wrap(f"same {len(a)} layers (types and output shapes) and the same "
                f"{mine.count_params():,} parameters as {name}")

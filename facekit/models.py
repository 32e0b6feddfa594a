"""The question's network, the answer's network, and one-change variants of the question's.

Every builder starts from ``keras.Input``, rescales uint8 pixels inside the model (so data stays
uint8 until the first layer) and returns a compiled model: Adam, sparse categorical
cross-entropy on softmax outputs, accuracy - as in the question.
"""

from __future__ import annotations

import keras
from keras import layers

__all__ = ["question_model", "answer_model", "question_variant", "VARIANTS",
           "question_min_size", "compile_like_question"]

# The question's blocks: conv layers per block; Dropout(0.4) after blocks 3-5; a MaxPool after each.
_QUESTION_BLOCKS = (1, 3, 2, 2, 2)
_DROPOUT_AFTER = (2, 3, 4)


def compile_like_question(model: keras.Model, learning_rate: float = 1e-3,
                          optimizer: str = "adam") -> keras.Model:
    """Compile as the question did: Adam (lr 1e-3), sparse categorical cross-entropy, accuracy."""
    opt = (keras.optimizers.Adam(learning_rate) if optimizer == "adam"
           else keras.optimizers.SGD(learning_rate))
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
                   learning_rate: float = 1e-3, optimizer: str = "adam",
                   seed: int | None = None) -> keras.Model:
    """The question's network, layer for layer: 2,397,704 parameters at the defaults.

    Rescaling(1/255) -> Conv2D(F, 2x2, relu) -> MaxPool -> 3x Conv2D -> MaxPool -> 2x Conv2D ->
    Dropout(0.4) -> MaxPool -> (2x Conv2D -> Dropout(0.4) -> MaxPool) x2 -> Flatten ->
    Dense(n_classes, softmax). All convs 2x2, 'valid' padding, Glorot-uniform init (Keras' default).

    The keyword arguments are the one-change variants: ``filters`` (one width, or one per block),
    ``kernel_initializer`` ('he_normal'), ``batch_norm`` (Conv -> BN -> ReLU), ``blocks`` (convs per
    block, e.g. (1, 1, 1, 1, 1)), ``padding`` ('same'), ``first_layer`` ((filters, kernel), e.g. the
    answer's (16, 5)), ``use_bias``, ``learning_rate``, ``optimizer`` ('adam' or 'sgd').
    ``seed`` makes the initial weights reproducible.
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
        raise ValueError(
            f"input {h}x{w} is too small for question_model: it needs at least {need}x{need} "
            f"({n_conv} {padding} 2x2 convs and {len(blocks)} poolings)")

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
                x = layers.BatchNormalization(name=f"bn{k}")(x)
                x = layers.ReLU(name=f"relu{k}")(x)
        if b in _DROPOUT_AFTER:
            x = layers.Dropout(0.4, name=f"dropout{b + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{b + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs, name="question_net")
    return compile_like_question(model, learning_rate, optimizer)


def answer_model(input_shape: tuple[int, int, int] = (200, 200, 3), n_classes: int = 8, *,
                 learning_rate: float = 1e-3, seed: int | None = None) -> keras.Model:
    """The accepted answer's network: 20,508,968 parameters at the defaults.

    Rescaling(1/255) -> Conv2D(16, 5x5, same, relu) -> MaxPool -> Conv2D(32, 3x3) -> MaxPool ->
    Conv2D(64, 3x3) -> MaxPool -> Flatten -> Dense(512) (no activation, as in the answer) ->
    Dense(n_classes, softmax). 98% of its weights sit in the Flatten -> Dense(512) matrix.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if min(input_shape[:2]) < 8:
        raise ValueError(f"input {input_shape[0]}x{input_shape[1]} is too small for answer_model: "
                         "it needs at least 8x8 (3 poolings)")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, (f, k) in enumerate(((16, 5), (32, 3), (64, 3)), 1):
        x = layers.Conv2D(f, k, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, name="dense")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs, name="answer_net")
    return compile_like_question(model, learning_rate)


def _growing(filters: int) -> tuple[int, ...]:
    return tuple(max(8, filters >> (4 - b)) for b in range(5))


# One change at a time: name -> (what changes, question_model keyword arguments given `filters`)
VARIANTS: dict[str, tuple[str, callable]] = {
    "question": ("the question's network, unchanged", lambda f: {}),
    "he_init": ("He-normal initialisation instead of Glorot-uniform",
                lambda f: {"kernel_initializer": "he_normal"}),
    "batch_norm": ("BatchNormalization before every ReLU", lambda f: {"batch_norm": True}),
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
    """The question's network with the one change ``name`` (a key of `VARIANTS`)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
    kwargs = {"filters": filters, **VARIANTS[name][1](filters)}
    return question_model(input_shape, n_classes, seed=seed, **kwargs)

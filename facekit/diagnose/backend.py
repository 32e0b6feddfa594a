"""The one place `facekit.diagnose` knows which Keras backend runs: gradients and compiled probes
through each backend's own mechanism (Keras' guides to custom training steps: TensorFlow's
``GradientTape``, JAX's ``value_and_grad`` over ``stateless_call``, PyTorch's autograd).

Everything else in the package calls Keras (``keras.ops``, model calls), so it runs on TensorFlow,
JAX and PyTorch alike; a backend's own module is imported here, inside the function that needs it,
so ``import facekit.diagnose`` needs Keras, not TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

__all__ = ["backend", "gradients", "squared_gradient_norms", "compiled_forward", "jit_compile"]

LossFn = Callable[[Any, Any], Any]  # (labels, outputs) -> the mean loss, a backend scalar


def backend() -> str:
    """Keras' backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def jit_compile() -> bool | str:
    """What the doctor's copies compile with: no XLA on TensorFlow (the numbers the chapters print
    were measured without it), the backend's default elsewhere (an un-jitted JAX step is slow)."""
    return False if backend() == "tensorflow" else "auto"


def gradients(model: keras.Model, loss_fn: LossFn, x: np.ndarray, y: np.ndarray,
              training: bool = False) -> tuple[float, list[np.ndarray | None]]:
    """The loss of ``model`` on (x, y) and its gradient for every trainable variable (None for a
    variable the loss does not reach), as NumPy arrays. The model's weights are not changed."""
    variables = model.trainable_variables
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=training))
        grads = tape.gradient(loss, variables)
        return float(loss), [None if g is None else np.asarray(g) for g in grads]
    if name == "jax":
        import jax

        values = [v.value for v in variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def loss_of(trainable: list) -> Any:
            out, _ = model.stateless_call(trainable, frozen, x, training=training)
            return loss_fn(y, out)

        loss, grads = jax.value_and_grad(loss_of)(values)
        return float(loss), [np.asarray(g) for g in grads]
    if name == "torch":
        import torch

        loss = loss_fn(y, model(x, training=training))
        params = [v.value for v in variables]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return float(loss.detach()), [None if g is None else g.detach().cpu().numpy() for g in grads]
    raise NotImplementedError(f"facekit.diagnose: no gradients for the Keras backend {name!r} "
                              "(tensorflow, jax or torch)")


def squared_gradient_norms(model: keras.Model, loss_fn: LossFn) -> Callable[[np.ndarray, np.ndarray],
                                                                             list[float]]:
    """A function (x, y) -> the squared gradient norm of each trainable variable (-1 for one the
    loss does not reach), compiled once on TensorFlow (``tf.function``: a record during training
    then costs one forward and backward pass); the other backends go through `gradients`."""
    if backend() != "tensorflow":
        def norms(x: np.ndarray, y: np.ndarray) -> list[float]:
            _, grads = gradients(model, loss_fn, x, y)
            return [-1.0 if g is None else float(np.square(g, dtype=np.float64).sum()) for g in grads]

        return norms
    import tensorflow as tf

    variables = model.trainable_variables

    @tf.function
    def squared(x: tf.Tensor, y: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=False))
        return [tf.reduce_sum(tf.square(g)) if g is not None else tf.constant(-1.0)
                for g in tape.gradient(loss, variables)]

    return lambda x, y: [float(v) for v in squared(x, y)]


def compiled_forward(probe: keras.Model) -> Callable[[np.ndarray], list[np.ndarray]]:
    """``probe``'s inference-mode outputs for a batch, as a list of NumPy arrays: compiled once
    with ``tf.function`` on TensorFlow, a direct call elsewhere."""
    call: Callable[[Any], Any] = lambda x: probe(x, training=False)  # noqa: E731
    if backend() == "tensorflow":
        import tensorflow as tf

        call = tf.function(call)

    def forward(x: np.ndarray) -> list[np.ndarray]:
        outs = call(x)
        return [keras.ops.convert_to_numpy(o) for o in (outs if isinstance(outs, list | tuple) else [outs])]

    return forward

"""Move Keras 3 recurrent layers into jaxseq and back; print the largest differences.

Nothing is trained: Keras models with random weights (a bidirectional
LSTM + GRU stack, a GRU with ``reset_after=False``, a SimpleRNN with
``go_backwards=True``) are converted with ``from_keras``, run on the same masked
batch, written back into fresh Keras layers with ``to_keras``, and compared.

    pip install keras                                 # an optional peer of jaxseq
    python examples/keras_roundtrip.py [--small]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from jaxseq.interop.keras import from_keras, to_keras  # noqa: E402

TOL = 1e-5
L = keras.layers


def randomise(layer, rng):
    """Perturb Keras' initial weights, so that the biases (initially 0 or 1) are
    tested too. (Much larger random weights make a long LSTM chaotic: then any
    two implementations drift apart from float32 rounding alone.)"""
    layer.set_weights(
        [w + 0.1 * rng.standard_normal(w.shape).astype(np.float32)
         for w in layer.get_weights()]
    )  # fmt: skip


def models(features, hidden):
    """Builders of the Keras layers to convert (each a list: one stack)."""
    return {
        "Bidirectional LSTM + GRU": lambda: [
            L.Bidirectional(L.LSTM(hidden, return_sequences=True)),
            L.Bidirectional(L.GRU(hidden, return_sequences=True)),
        ],
        "GRU reset_after=False": lambda: [
            L.GRU(hidden, reset_after=False, return_sequences=True)
        ],
        "SimpleRNN go_backwards": lambda: [
            L.SimpleRNN(hidden, go_backwards=True, return_sequences=True)
        ],
    }


def keras_run(layers, xs, mask):
    for layer in layers:
        xs = layer(xs, mask=mask)
    return np.asarray(xs)


def build(layers, features):
    size = features
    for layer in layers:
        layer.build((None, None, size))
        size = layer.compute_output_shape((None, None, size))[-1]
    return layers


def main(small: bool) -> float:
    batch, time, features, hidden = (4, 10, 6, 8) if small else (32, 100, 64, 128)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((batch, time, features)).astype(np.float32)
    lengths = rng.integers(1, time + 1, batch)
    mask = np.arange(time)[None, :] < lengths[:, None]
    worst = 0.0
    for name, make in models(features, hidden).items():
        layers = build(make(), features)
        for layer in layers:
            randomise(layer, rng)
        ys_k = keras_run(layers, xs, mask)

        rnn, params = from_keras(layers)  # keras -> jaxseq
        _, ys = jax.jit(rnn.apply)(params, xs, lengths=lengths)
        ys = np.asarray(ys)
        if rnn.reverse:  # Keras returns go_backwards outputs in processing order
            ys_k = ys_k[:, ::-1]
        valid = mask[..., None]

        fresh = build(make(), features)  # jaxseq -> keras
        to_keras(rnn, params, fresh)
        ys_back = keras_run(fresh, xs, mask)
        ys_back = ys_back[:, ::-1] if rnn.reverse else ys_back
        diffs = {
            "outputs": np.abs(np.where(valid, ys - ys_k, 0.0)).max(),
            "round trip": np.abs(np.where(valid, ys_back - ys_k, 0.0)).max(),
        }
        print(f"{name:26s} " + "  ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
        worst = max(worst, *diffs.values())
    print(f"largest difference {worst:.2e} (tolerance {TOL:g})")
    return worst


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="small sizes (tests)")
    assert main(parser.parse_args().small) < TOL

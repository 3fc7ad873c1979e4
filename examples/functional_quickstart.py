"""Functional jaxseq end to end: a length-aware LSTM classifier trained with Optax.

Task: each sequence holds random numbers and padding; the label says whether the
sum of its valid steps is positive. The model is an LSTM, mean-pooled over the
valid steps (jaxseq.nn.masked_mean), and a linear readout.

    python examples/functional_quickstart.py           # about 20 s on a laptop CPU
    python examples/functional_quickstart.py --small   # a few seconds
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax

import jaxseq


def make_data(key, n, max_len):
    k_x, k_n = jax.random.split(key)
    xs = jax.random.normal(k_x, (n, max_len, 1))
    lengths = jax.random.randint(k_n, (n,), 1, max_len + 1)
    mask = jaxseq.nn.mask_from_lengths(lengths, max_len)
    xs = jnp.where(mask[..., None], xs, 0.0)  # right padding
    labels = (xs[..., 0].sum(1) > 0).astype(jnp.float32)
    return xs, lengths, labels


def main(small: bool) -> float:
    n, max_len, hidden, steps = (256, 12, 16, 80) if small else (2048, 30, 32, 600)
    xs, lengths, labels = make_data(jax.random.key(0), n, max_len)
    xs_te, len_te, y_te = make_data(jax.random.key(1), n // 2, max_len)

    layer = jaxseq.stack(jaxseq.cells.lstm(hidden))
    params = {
        "rnn": layer.init(jax.random.key(2), 1),
        "w": jnp.zeros((hidden,)),
        "b": jnp.zeros(()),
    }

    def logits_fn(params, xs, lengths):
        _, ys = layer.apply(params["rnn"], xs, lengths=lengths)
        return jaxseq.nn.masked_mean(ys, lengths) @ params["w"] + params["b"]

    def loss_fn(params, xs, lengths, labels):
        logits = logits_fn(params, xs, lengths)
        return optax.sigmoid_binary_cross_entropy(logits, labels).mean()

    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def train_step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    batch_size = 64
    for step in range(steps):
        i = (step * batch_size) % n
        batch = (
            xs[i : i + batch_size],
            lengths[i : i + batch_size],
            labels[i : i + batch_size],
        )
        params, opt_state, loss = train_step(params, opt_state, batch)
        if step % (steps // 5) == 0:
            print(f"step {step:4d}  loss {float(loss):.4f}")

    pred = jax.jit(logits_fn)(params, xs_te, len_te) > 0
    accuracy = float((pred == (y_te > 0.5)).mean())
    print(f"held-out accuracy {accuracy:.3f} ({len(y_te)} sequences)")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick run (tests)")
    accuracy = main(parser.parse_args().small)
    assert accuracy > 0.7, f"accuracy {accuracy:.3f}: training failed"

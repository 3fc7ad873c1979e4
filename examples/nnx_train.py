"""A jaxseq RNN inside a Flax NNX model, trained with nnx.Optimizer, saved, reloaded.

Task (the "adding problem", Hochreiter & Schmidhuber 1997, at short lengths): each
step holds a random value and a 0/1 marker; the target is the sum of the two
marked values. A bidirectional GRU reads the sequence, a linear layer reads its
final states. Dropout between the two recurrent layers is on while training
(``model.train()``) and off for evaluation (``model.eval()``).

    python examples/nnx_train.py           # about a minute on a laptop CPU
    python examples/nnx_train.py --small   # a few seconds
"""

from __future__ import annotations

import argparse
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jaxseq
from jaxseq import io
from jaxseq.nnx import RNN


def adding_problem(key, n, time):
    k_v, k_m, k_n = jax.random.split(key, 3)
    lengths = jax.random.randint(k_n, (n,), time // 2, time + 1)
    values = jax.random.uniform(k_v, (n, time))
    # two distinct marked positions within each sequence's valid prefix
    scores = jax.random.uniform(k_m, (n, time))
    scores = jnp.where(jaxseq.nn.mask_from_lengths(lengths, time), scores, -1.0)
    top2 = jnp.argsort(-scores, axis=1)[:, :2]
    markers = jnp.zeros((n, time)).at[jnp.arange(n)[:, None], top2].set(1.0)
    xs = jnp.stack([values, markers], axis=-1)
    xs = jnp.where(jaxseq.nn.mask_from_lengths(lengths, time)[..., None], xs, 0.0)
    return xs, lengths, (values * markers).sum(1)


class Adder(nnx.Module):
    def __init__(self, hidden: int, *, rngs: nnx.Rngs):
        self.rnn = RNN(jaxseq.cells.gru(hidden), 2, num_layers=2, bidirectional=True,
                       dropout=0.1, return_carry=True, rngs=rngs)  # fmt: skip
        self.head = nnx.Linear(2 * hidden, 1, rngs=rngs)

    def __call__(self, xs, lengths):
        carries, _ = self.rnn(xs, lengths=lengths)
        top = carries[-1]  # BiCarry of the last layer
        return self.head(jnp.concatenate([top.fw.h, top.bw.h], -1))[:, 0]


def main(small: bool) -> float:
    n, time, hidden, steps = (256, 10, 16, 120) if small else (4096, 30, 32, 1500)
    xs, lengths, target = adding_problem(jax.random.key(0), n, time)
    xs_te, len_te, target_te = adding_problem(jax.random.key(1), 512, time)

    model = Adder(hidden, rngs=nnx.Rngs(params=0, dropout=1))
    optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, xs, lengths, target):
        def loss_fn(model):
            return jnp.mean((model(xs, lengths) - target) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def evaluate(model, xs, lengths, target):
        return jnp.mean((model(xs, lengths) - target) ** 2)

    baseline = float(jnp.var(target_te))  # predicting the mean
    batch = 64
    model.train()
    for step in range(steps):
        i = (step * batch) % n
        loss = train_step(model, optimizer, xs[i : i + batch], lengths[i : i + batch],
                          target[i : i + batch])  # fmt: skip
        if step % (steps // 5) == 0:
            print(f"step {step:5d}  train mse {float(loss):.4f}")
    model.eval()
    mse = float(evaluate(model, xs_te, len_te, target_te))
    print(f"held-out mse {mse:.4f} (predicting the mean: {baseline:.4f})")

    # save the recurrent part with jaxseq.io and rebuild it as a module
    with tempfile.TemporaryDirectory() as tmp:
        layer, params = model.rnn.functional()
        io.save_layer(f"{tmp}/rnn", layer, params, extra={"held_out_mse": mse})
        restored = RNN.from_functional(*io.load_layer(f"{tmp}/rnn"), return_carry=True)
    same = restored(xs_te, lengths=len_te)[1]
    np.testing.assert_array_equal(same, model.rnn(xs_te, lengths=len_te)[1])
    print("saved and reloaded the RNN: identical outputs")
    return mse / baseline


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick run (tests)")
    ratio = main(parser.parse_args().small)
    assert ratio < 0.8, f"mse / baseline {ratio:.2f}: training failed"

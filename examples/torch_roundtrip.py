"""Move PyTorch recurrent modules into jaxseq and back; print the largest differences.

Nothing is trained: a torch.nn.LSTM, GRU and RNN (two layers, bidirectional) with
random weights are converted with one call each way, run on the same padded batch
(PyTorch through a packed sequence, jaxseq with ``lengths``), and compared.

    pip install torch                                 # an optional peer of jaxseq
    python examples/torch_roundtrip.py [--small]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from jaxseq.interop.torch import from_torch, to_torch

TOL = 1e-5


def torch_run(module, xs, lengths):
    packed = pack_padded_sequence(
        torch.from_numpy(xs),
        torch.from_numpy(lengths),
        batch_first=True,
        enforce_sorted=False,
    )
    with torch.no_grad():
        out, state = module(packed)
    ys, _ = pad_packed_sequence(out, batch_first=True, total_length=xs.shape[1])
    h_n = state[0] if isinstance(state, tuple) else state
    return ys.numpy(), h_n.numpy()


def main(small: bool) -> float:
    batch, time, features, hidden = (4, 12, 8, 16) if small else (32, 100, 64, 128)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((batch, time, features)).astype(np.float32)
    lengths = rng.integers(1, time + 1, batch)
    lengths[0] = time  # pad_packed_sequence pads to the longest sequence
    torch.manual_seed(0)
    worst = 0.0
    for make in (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN):
        module = make(
            features, hidden, num_layers=2, bidirectional=True, batch_first=True
        )
        ys_t, h_t = torch_run(module, xs, lengths)

        layer, params = from_torch(module)  # torch -> jaxseq
        carries, ys = jax.jit(layer.apply)(params, xs, lengths=lengths)
        h = np.stack([c.h for layer_c in carries for c in (layer_c.fw, layer_c.bw)])

        back = to_torch(layer, params)  # jaxseq -> torch
        ys_back, _ = torch_run(back, xs, lengths)
        diffs = {
            "outputs": np.abs(np.asarray(ys) - ys_t).max(),
            "h_n": np.abs(h - h_t).max(),
            "round trip": np.abs(ys_back - ys_t).max(),
        }
        print(
            f"{make.__name__:5s} " + "  ".join(f"{k} {v:.2e}" for k, v in diffs.items())
        )
        worst = max(worst, *diffs.values())
    print(f"largest difference {worst:.2e} (tolerance {TOL:g})")
    return worst


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="small sizes (tests)")
    assert main(parser.parse_args().small) < TOL

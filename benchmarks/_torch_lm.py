"""The PyTorch peer of ``benchmarks/lm.py``: the word_language_model recipe of
the PyTorch examples (``main.py`` / ``model.py`` / ``generate.py``), written here
independently of jaxseq, on the token ids ``lm.py`` prepared.

Recipe: ``RNNModel`` = embedding -> dropout -> ``nn.LSTM`` (dropout between
layers) -> dropout -> linear decoder (tied to the embedding); encoder and
decoder initialised uniform(-0.1, 0.1), decoder bias 0. Training: batches of
``B`` parallel streams (``batchify``) read in chunks of ``bptt`` steps, the hidden
state carried over and detached between chunks (``repackage_hidden``) and reset
at each epoch start, mean cross-entropy, ``clip_grad_norm_`` then plain SGD
``p -= lr * grad``; after each epoch the validation loss decides: better -> keep
the weights, else ``lr /= 4``; the test loss is that of the best weights. Only
whole chunks are read (as ``jaxseq.lm.chunk_stream`` does) so both sides score
the same tokens. One thread (``torch.set_num_threads(1)``).

Usage (by ``lm.py``)::

    python benchmarks/_torch_lm.py DATA.npz SPEC_JSON OUT_JSON
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn


class RNNModel(nn.Module):
    def __init__(self, kind, ntoken, ninp, nhid, nlayers, dropout, tie):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "elman": nn.RNN}[kind]
        self.rnn = rnn(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie:
            self.decoder.weight = self.encoder.weight
        self.kind, self.nhid, self.nlayers = kind, nhid, nlayers
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if not tie:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, x, hidden):
        emb = self.drop(self.encoder(x))
        out, hidden = self.rnn(emb, hidden)
        return self.decoder(self.drop(out)), hidden

    def init_hidden(self, bsz):
        z = torch.zeros(self.nlayers, bsz, self.nhid)
        return (z, z.clone()) if self.kind == "lstm" else z


def batchify(ids: np.ndarray, bsz: int) -> torch.Tensor:
    n = ids.shape[0] // bsz
    return torch.from_numpy(ids[: n * bsz].astype(np.int64)).view(bsz, n).t()


def detach(h):
    return tuple(x.detach() for x in h) if isinstance(h, tuple) else h.detach()


def chunks(data: torch.Tensor, bptt: int):
    n = (data.size(0) - 1) // bptt  # whole chunks only
    for i in range(0, n * bptt, bptt):
        yield data[i : i + bptt], data[i + 1 : i + 1 + bptt]


def evaluate(model, data, bsz, bptt) -> float:
    model.eval()
    total, count = 0.0, 0
    hidden = model.init_hidden(bsz)
    with torch.no_grad():
        for x, y in chunks(data, bptt):
            out, hidden = model(x, hidden)
            total += nn.functional.cross_entropy(
                out.view(-1, out.size(-1)), y.reshape(-1), reduction="sum"
            ).item()
            count += y.numel()
    return total / count


def train(spec: dict, data: dict) -> dict:
    torch.manual_seed(spec.get("seed", 0))
    level = spec["level"]
    vocab = int(data[f"{level}_vocab"])
    train_d = batchify(data[f"{level}_train"], spec["batch"])
    valid_d = batchify(data[f"{level}_valid"], spec["eval_batch"])
    test_d = batchify(data[f"{level}_test"], spec["eval_batch"])
    size = spec["size"]
    model = RNNModel(
        spec["model"], vocab, size, size, spec["layers"], spec["dropout"], spec["tied"]
    )
    lr, bptt, best, best_state = spec["lr"], spec["bptt"], math.inf, None
    train_seconds, train_tokens, epochs = 0.0, 0, []
    train_cpu_seconds = 0.0
    for epoch in range(spec["epochs"]):
        model.train()
        hidden = model.init_hidden(spec["batch"])
        tic, tic_cpu = time.perf_counter(), time.process_time()
        for x, y in chunks(train_d, bptt):
            hidden = detach(hidden)
            model.zero_grad()
            out, hidden = model(x, hidden)
            loss = nn.functional.cross_entropy(out.view(-1, vocab), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec["clip"])
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            train_tokens += y.numel()
        train_seconds += time.perf_counter() - tic
        train_cpu_seconds += time.process_time() - tic_cpu
        val = evaluate(model, valid_d, spec["eval_batch"], bptt)
        epochs.append({"epoch": epoch + 1, "lr": lr, "valid_ppl": math.exp(val)})
        if val < best:
            best, best_state = val, copy.deepcopy(model.state_dict())
        else:
            lr /= 4.0
    model.load_state_dict(best_state)
    test = evaluate(model, test_d, spec["eval_batch"], bptt)
    params = sum(p.numel() for p in model.parameters())  # tied: counted once
    return {
        "valid_loss": best,
        "test_loss": test,
        "params": int(params),
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "train_tokens": train_tokens,
        "compile_seconds": 0.0,
        "epochs": epochs,
    }


def generate(spec: dict, data: dict) -> list[dict]:
    """PyTorch's generate.py loop: one forward call per token, sample on the
    host (``torch.multinomial`` of ``exp(logits / T)``), feed it back."""
    torch.manual_seed(0)
    vocab = int(data["word_vocab"])
    model = RNNModel("lstm", vocab, 200, 200, 2, 0.0, True).eval()
    rows = []
    for bsz in spec["batches"]:
        n = spec["python_tokens"]
        x = torch.randint(3, vocab, (1, bsz))
        hidden = model.init_hidden(bsz)
        with torch.no_grad():
            _, hidden = model(x, hidden)
            tic, tic_cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                out, hidden = model(x, hidden)
                weights = out[0].div(1.0).exp()
                x = torch.multinomial(weights, 1).view(1, bsz)
            sec, cpu = time.perf_counter() - tic, time.process_time() - tic_cpu
        rows.append(
            {
                "impl": "torch_python_loop",
                "batch": bsz,
                "tokens": n * bsz,
                "seconds": sec,
                "tokens_per_s": n * bsz / sec,
                "cpu_seconds": cpu,
                "tokens_per_cpu_s": n * bsz / cpu,
            }
        )
    return rows


def main() -> None:
    torch.set_num_threads(1)
    data_path, spec, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    data = dict(np.load(data_path))
    result = generate(spec, data) if spec.get("generate") else train(spec, data)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()

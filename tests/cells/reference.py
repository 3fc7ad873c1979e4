"""NumPy references written from the seed's equations (float64), independent of
jaxseq's code: concatenated ``[h_{t-1}, x_t]`` inputs, per-gate weight matrices,
and a plain Python loop over time with explicit lengths and reverse handling."""

from __future__ import annotations

import numpy as np


def sigma(a):
    return 1.0 / (1.0 + np.exp(-a))


def _gate(w_h, w_x, sl):
    """The seed's ``W_gate`` acting on ``[h, x]``: shape ``[H, H + F]``."""
    return np.concatenate(
        [np.asarray(w_h, np.float64)[:, sl], np.asarray(w_x, np.float64)[:, sl]], axis=0
    ).T


def lstm_step(p, h, c, x):
    """f_t = sigma(W_f [h, x] + b_f); i_t; C~_t; C_t = f C + i C~; o_t; h_t = o tanh C."""
    H = h.shape[-1]
    b = np.asarray(p.b, np.float64)
    hx = np.concatenate([h, x])
    sl = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("ifgo")}
    f = sigma(_gate(p.w_h, p.w_x, sl["f"]) @ hx + b[sl["f"]])
    i = sigma(_gate(p.w_h, p.w_x, sl["i"]) @ hx + b[sl["i"]])
    c_tilde = np.tanh(_gate(p.w_h, p.w_x, sl["g"]) @ hx + b[sl["g"]])
    c = f * c + i * c_tilde
    o = sigma(_gate(p.w_h, p.w_x, sl["o"]) @ hx + b[sl["o"]])
    return o * np.tanh(c), c


def gru_seed_step(p, h, x):
    """The seed's GRU (reset before the recurrent product), biases added:
    z_t = sigma(W_z [h, x]); r_t = sigma(W_r [h, x]); h~ = tanh(W [r h, x]);
    h_t = (1 - z_t) h + z_t h~.

    The seed's update gate is jaxseq's ``1 - z`` (PyTorch convention), so its
    weights are jaxseq's z-weights negated.
    """
    H = h.shape[-1]
    bx, bh = np.asarray(p.b_x, np.float64), np.asarray(p.b_h, np.float64)
    sr, sz, sn = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)
    hx = np.concatenate([h, x])
    w_z_seed, b_z_seed = -_gate(p.w_h, p.w_x, sz), -(bx[sz] + bh[sz])
    z_seed = sigma(w_z_seed @ hx + b_z_seed)
    r = sigma(_gate(p.w_h, p.w_x, sr) @ hx + bx[sr] + bh[sr])
    h_tilde = np.tanh(
        _gate(p.w_h, p.w_x, sn) @ np.concatenate([r * h, x]) + bx[sn] + bh[sn]
    )
    return (1.0 - z_seed) * h + z_seed * h_tilde


def gru_reset_after_step(p, h, x):
    """cuDNN / PyTorch GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    H = h.shape[-1]
    wx, wh = np.asarray(p.w_x, np.float64), np.asarray(p.w_h, np.float64)
    bx, bh = np.asarray(p.b_x, np.float64), np.asarray(p.b_h, np.float64)
    gi, gh = x @ wx + bx, h @ wh + bh
    r = sigma(gi[:H] + gh[:H])
    z = sigma(gi[H : 2 * H] + gh[H : 2 * H])
    n = np.tanh(gi[2 * H :] + r * gh[2 * H :])
    return (1.0 - z) * n + z * h


def elman_step(p, h, x, act=np.tanh):
    """a_t = b + W h_{t-1} + U x_t; h_t = tanh(a_t)."""
    W = np.asarray(p.w_h, np.float64).T
    U = np.asarray(p.w_x, np.float64).T
    return act(np.asarray(p.b, np.float64) + W @ h + U @ x)


def layer_norm(a, alpha, beta, eps):
    """Ba et al. (2016): LN(a; alpha, beta) = alpha (a - mu) / sqrt(var + eps) + beta,
    mu and var over the whole vector a."""
    mu = a.mean()
    sd = np.sqrt(((a - mu) ** 2).mean() + eps)
    return np.asarray(alpha, np.float64) * (a - mu) / sd + np.asarray(beta, np.float64)


def layernorm_lstm_step(p, h, c, x, eps):
    """Ba et al. (2016), LN-LSTM (their gate order f, i, o, g):
    (f, i, o, g) = LN(W_h h; a1, b1) + LN(W_x x; a2, b2) + b,
    c_t = sigma(f) c + sigma(i) tanh(g), h_t = sigma(o) tanh(LN(c_t; a3, b3)).
    jaxseq's ``b`` holds b + b1 + b2 (so b1 = b2 = 0 here)."""
    H = h.shape[-1]
    Wh, Wx = np.asarray(p.w_h, np.float64).T, np.asarray(p.w_x, np.float64).T
    zero = np.zeros(4 * H)
    pre = (
        layer_norm(Wh @ h, p.g_h, zero, eps)
        + layer_norm(Wx @ x, p.g_x, zero, eps)
        + np.asarray(p.b, np.float64)
    )
    sl = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("ifgo")}
    f, i, o, g = (pre[sl[k]] for k in "fiog")
    c = sigma(f) * c + sigma(i) * np.tanh(g)
    h = sigma(o) * np.tanh(layer_norm(c, p.g_c, p.b_c, eps))
    return h, c


def layernorm_gru_step(p, h, x, eps):
    """LN on the input and the recurrent projections of the reset-after GRU:
    a = LN(W_x x; g_x, b_x), u = LN(W_h h; g_h, b_h), r = sigma(a_r + u_r),
    z = sigma(a_z + u_z), n = tanh(a_n + r u_n), h_t = (1 - z) n + z h."""
    H = h.shape[-1]
    Wh, Wx = np.asarray(p.w_h, np.float64).T, np.asarray(p.w_x, np.float64).T
    a = layer_norm(Wx @ x, p.g_x, p.b_x, eps)
    u = layer_norm(Wh @ h, p.g_h, p.b_h, eps)
    r = sigma(a[:H] + u[:H])
    z = sigma(a[H : 2 * H] + u[H : 2 * H])
    n = np.tanh(a[2 * H :] + r * u[2 * H :])
    return (1.0 - z) * n + z * h


def peephole_lstm_step(p, h, c, x):
    """Gers & Schmidhuber (2000), peephole LSTM with forget gate:
    i = sigma(W_i [h, x] + p_i c_{t-1} + b_i), f = sigma(W_f [h, x] + p_f c_{t-1} + b_f),
    c_t = f c_{t-1} + i tanh(W_c [h, x] + b_c), o = sigma(W_o [h, x] + p_o c_t + b_o),
    h_t = o tanh(c_t); peepholes diagonal (elementwise weights)."""
    H = h.shape[-1]
    b = np.asarray(p.b, np.float64)
    w_c = np.asarray(p.w_c, np.float64)
    p_i, p_f, p_o = w_c[:H], w_c[H : 2 * H], w_c[2 * H :]
    hx = np.concatenate([h, x])
    sl = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("ifgo")}

    def net(g):
        return _gate(p.w_h, p.w_x, sl[g]) @ hx + b[sl[g]]

    i = sigma(net("i") + p_i * c)
    f = sigma(net("f") + p_f * c)
    c_new = f * c + i * np.tanh(net("g"))
    o = sigma(net("o") + p_o * c_new)
    return o * np.tanh(c_new), c_new


def run(step, state0, xs, length=None, reverse=False):
    """Run ``step(state, x) -> state`` (state a tuple whose first item is h) over
    one sequence ``xs [T, F]``: valid prefix only, right to left if ``reverse``;
    outputs at their input index, zeros at padded steps."""
    T = xs.shape[0]
    L = T if length is None else int(length)
    order = range(L - 1, -1, -1) if reverse else range(L)
    ys = np.zeros((T, state0[0].shape[-1]))
    state = tuple(np.asarray(s, np.float64) for s in state0)
    for t in order:
        state = step(state, np.asarray(xs[t], np.float64))
        ys[t] = state[0]
    return state, ys


def steppers(name, p, act=np.tanh):
    """``step(state, x) -> state`` for a cell name and its params."""
    if name == "lstm":
        return lambda s, x: lstm_step(p, s[0], s[1], x)
    if name == "gru_seed":
        return lambda s, x: (gru_seed_step(p, s[0], x),)
    if name == "gru":
        return lambda s, x: (gru_reset_after_step(p, s[0], x),)
    if name == "elman":
        return lambda s, x: (elman_step(p, s[0], x, act),)
    if name == "layernorm_lstm":
        return lambda s, x: layernorm_lstm_step(p, s[0], s[1], x, 1e-5)
    if name == "layernorm_gru":
        return lambda s, x: (layernorm_gru_step(p, s[0], x, 1e-5),)
    if name == "peephole_lstm":
        return lambda s, x: peephole_lstm_step(p, s[0], s[1], x)
    raise ValueError(name)

"""Compiled (numba) loops of the BiLSTM-CRF entity tagger.

The time-step loops of the LSTM and of the CRF (Viterbi, forward-backward) are sequential
by nature; in plain numpy each step costs several array calls, which dominated the
tagger's time (measured: 70 % in Viterbi/forward-backward alone). The LSTM step's matrix
product stays in BLAS (:func:`khabar.transforms.entities_nn._lstm_fused`); its element ops
(gates, cell, output) are :func:`lstm_cell`, one pass with a rational tanh that the
compiler vectorizes (numpy's float32 ``tanh`` cost as much as the product; a scalar numba
loop over the whole step, product included, had been slower than numpy: 12,600 against
27,000 tokens/s). Compiled once per process; ``cache=True`` keeps the machine code on
disk, keyed by this file's modification time and naming this module
(``khabar.transforms.entities_kernel``; after a rename, touch this file).
:mod:`khabar.transforms.entities_nn` keeps plain-numpy versions as the reference the tests
compare against.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def viterbi_marginals(
    emis: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best label path of a linear-chain CRF and the marginal probability of each of its
    labels. Viterbi runs in log space; forward-backward in probability space, rescaled at
    every step (``K`` exponentials a step instead of ``K**2``). Inner loops run over
    contiguous rows (the transposed transitions where a column is read), so they vectorize:
    0.81 -> 0.49 us per token and head at 15 labels (same paths; marginals within 1e-15)."""
    steps, k = emis.shape
    tt = np.ascontiguousarray(trans.T)  # tt[j, i] = trans[i, j]
    score = start + emis[0]
    back = np.zeros((steps, k), np.int64)
    new = np.empty(k)
    for t in range(1, steps):
        for j in range(k):
            row = tt[j]
            best = -np.inf
            arg = 0
            for i in range(k):
                s = score[i] + row[i]
                if s > best:
                    best = s
                    arg = i
            back[t, j] = arg
            new[j] = best + emis[t, j]
        score, new = new, score
    path = np.zeros(steps, np.int64)
    path[steps - 1] = np.argmax(score + end)
    for t in range(steps - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    et = np.exp(trans - trans.max())
    ett = np.ascontiguousarray(et.T)
    local = np.empty((steps, k))
    for t in range(steps):
        m = -np.inf
        for j in range(k):
            v = emis[t, j] + (start[j] if t == 0 else 0.0)
            local[t, j] = v
            if v > m:
                m = v
        for j in range(k):
            local[t, j] = np.exp(local[t, j] - m)
    alpha = np.empty((steps, k))
    s0 = local[0].sum()
    for j in range(k):
        alpha[0, j] = local[0, j] / s0
    for t in range(1, steps):
        total = 0.0
        prev = alpha[t - 1]
        for j in range(k):
            col = ett[j]
            acc = 0.0
            for i in range(k):
                acc += prev[i] * col[i]
            v = acc * local[t, j]
            alpha[t, j] = v
            total += v
        inv = 1.0 / total
        for j in range(k):
            alpha[t, j] *= inv
    beta = np.empty((steps, k))
    em = end.max()
    for j in range(k):
        beta[steps - 1, j] = np.exp(end[j] - em)
    tmp = np.empty(k)
    for t in range(steps - 2, -1, -1):
        for j in range(k):
            tmp[j] = local[t + 1, j] * beta[t + 1, j]
        total = 0.0
        for i in range(k):
            row = et[i]
            acc = 0.0
            for j in range(k):
                acc += row[j] * tmp[j]
            beta[t, i] = acc
            total += acc
        inv = 1.0 / total
        for i in range(k):
            beta[t, i] *= inv
    marg = np.empty(steps)
    for t in range(steps):
        norm = 0.0
        for j in range(k):
            norm += alpha[t, j] * beta[t, j]
        marg[t] = alpha[t, path[t]] * beta[t, path[t]] / norm
    return path, marg


@njit(cache=True, nogil=True)
def viterbi_marginals_many(
    emis: np.ndarray, offsets: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`viterbi_marginals` of several sentences in one call: sentence ``i`` is rows
    ``offsets[i]:offsets[i + 1]`` of ``emis``; paths and marginals come back concatenated
    the same way (one call per batch instead of one per sentence and head)."""
    total = emis.shape[0]
    paths = np.zeros(total, np.int64)
    margs = np.zeros(total)
    for i in range(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        if b > a:
            path, marg = viterbi_marginals(emis[a:b], trans, start, end)
            paths[a:b] = path
            margs[a:b] = marg
    return paths, margs


# Eigen's rational approximation of tanh for float32 (Eigen/src/Core/MathFunctionsImpl.h,
# generic_fast_tanh_float, MPL-2.0; the same coefficients as TensorFlow's and ONNX
# Runtime's CPU kernels): odd degree-13 over even degree-6 on [-9, 9], within a few ULP
# of the exact value; tanh is +-1 in float32 beyond. Plain arithmetic, so the compiler
# vectorizes it (numpy's float32 tanh took 4 ns an element here, as much as the step's
# matrix product).
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)
_CLAMP = np.float32(9.0)


@njit(inline="always", fastmath=True, error_model="numpy")
def fast_tanh(x: np.float32) -> np.float32:
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    q = x2 * _B6 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return x * p / q


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def tanh_array(x: np.ndarray) -> np.ndarray:
    """:func:`fast_tanh` of every element of a float32 array (for tests and measurements)."""
    flat = x.ravel()
    out = np.empty_like(flat)
    for i in range(flat.size):
        out[i] = fast_tanh(flat[i])
    return out.reshape(x.shape)


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def lstm_cell(
    recurrent: np.ndarray,
    proj: np.ndarray,
    t: int,
    gate_col: int,
    c: np.ndarray,
    h: np.ndarray,
    out: np.ndarray,
    out_col: int,
    k: int,
) -> None:
    """One LSTM time step for the first ``k`` sentences, after the recurrent product:
    ``recurrent`` is ``h[:k] @ w_hh`` ``(>=k, 4H)``, ``proj[:, t, gate_col:gate_col + 4H]``
    the input projection with both biases, gates fused as in
    :class:`~khabar.transforms.entities_nn.BiLSTMCRF` (input, forget, output halved;
    cell). Updates ``c`` and ``h`` and writes ``h`` into ``out[:, t, out_col:out_col + H]``;
    every element op of the step in one pass."""
    hid = h.shape[1]
    half = np.float32(0.5)
    for r in range(k):
        rec = recurrent[r]
        pre = proj[r, t, gate_col : gate_col + 4 * hid]
        dest = out[r, t, out_col : out_col + hid]
        cr = c[r]
        hr = h[r]
        for j in range(hid):
            i_g = half * fast_tanh(rec[j] + pre[j]) + half
            f_g = half * fast_tanh(rec[hid + j] + pre[hid + j]) + half
            o_g = half * fast_tanh(rec[2 * hid + j] + pre[2 * hid + j]) + half
            g_g = fast_tanh(rec[3 * hid + j] + pre[3 * hid + j])
            cell = f_g * cr[j] + i_g * g_g
            cr[j] = cell
            value = o_g * fast_tanh(cell)
            hr[j] = value
            dest[j] = value


@njit(cache=True, nogil=True)
def gather_projections(
    table: np.ndarray,
    rows: np.ndarray,
    gaz_proj: np.ndarray,
    gaz_ids: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    padded: np.ndarray,
) -> None:
    """``padded[rank, p] = table[rows[s + p]] + gaz_proj[gaz_ids[s + p]]`` for ``p <
    lengths[rank]``, ``s = starts[rank]``: each token's input projection (its word's row
    and its gazetteer tag's row, both biases in the latter) put in its sentence's place."""
    width = table.shape[1]
    for rank in range(len(starts)):
        s = starts[rank]
        for p in range(lengths[rank]):
            word = table[rows[s + p]]
            tag = gaz_proj[gaz_ids[s + p]]
            dest = padded[rank, p]
            for j in range(width):
                dest[j] = word[j] + tag[j]

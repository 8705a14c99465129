"""Compiled (numba) loops of the BiLSTM-CRF entity tagger.

The time-step loops of the LSTM and of the CRF (Viterbi, forward-backward) are sequential
by nature; in plain numpy each step costs several array calls, which dominated the
tagger's time (measured: 70 % in Viterbi/forward-backward alone). The LSTM step stays in
numpy (:meth:`khabar.transforms.entities_nn.BiLSTMCRF.encode`): its gate arithmetic is best done
by numpy's vectorized ``exp``/``tanh`` over all sentences at once (measured 27,000 against
12,600 tokens/s for a scalar numba loop, which cannot vectorize them). Compiled once per
process; ``cache=True`` keeps the machine code on disk, keyed by this file's modification
time and naming this module (``khabar.transforms.entities_kernel``; after a rename, touch
this file). :mod:`khabar.transforms.entities_nn` keeps plain-numpy versions of both as the
reference the tests compare against.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def viterbi_marginals(
    emis: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best label path of a linear-chain CRF and the marginal probability of each of its
    labels. Viterbi runs in log space; forward-backward in probability space, rescaled at
    every step (``K`` exponentials a step instead of ``K**2``)."""
    steps, k = emis.shape
    score = start + emis[0]
    back = np.zeros((steps, k), np.int64)
    for t in range(1, steps):
        new = np.empty(k)
        for j in range(k):
            best = -np.inf
            arg = 0
            for i in range(k):
                s = score[i] + trans[i, j]
                if s > best:
                    best = s
                    arg = i
            back[t, j] = arg
            new[j] = best + emis[t, j]
        score = new
    path = np.zeros(steps, np.int64)
    path[steps - 1] = np.argmax(score + end)
    for t in range(steps - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    # Forward-backward with per-step scaling.
    et = np.exp(trans - trans.max())
    local = np.empty((steps, k))
    for t in range(steps):
        row = emis[t] + start if t == 0 else emis[t]
        local[t] = np.exp(row - row.max())
    alpha = np.zeros((steps, k))
    alpha[0] = local[0] / local[0].sum()
    for t in range(1, steps):
        total = 0.0
        for j in range(k):
            acc = 0.0
            for i in range(k):
                acc += alpha[t - 1, i] * et[i, j]
            alpha[t, j] = acc * local[t, j]
            total += alpha[t, j]
        for j in range(k):
            alpha[t, j] /= total
    beta = np.zeros((steps, k))
    beta[steps - 1] = np.exp(end - end.max())
    for t in range(steps - 2, -1, -1):
        total = 0.0
        for i in range(k):
            acc = 0.0
            for j in range(k):
                acc += et[i, j] * local[t + 1, j] * beta[t + 1, j]
            beta[t, i] = acc
            total += acc
        for i in range(k):
            beta[t, i] /= total
    marg = np.zeros(steps)
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

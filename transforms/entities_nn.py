"""A BiLSTM-CRF entity tagger in plain numpy (no deep-learning framework at run time).

The network (trained by ``pipeline/train/ner_nn.py`` with PyTorch, then exported to one
``.npz``): per token, a word embedding (word2vec on ``news-fa`` + the training text,
fine-tuned), a character CNN (width 3, max-pooled) and a gazetteer-match embedding are
concatenated and read by one bidirectional LSTM; each *head* (one per training corpus,
e.g. PEYMA and Arman, which annotate different type sets) is a linear layer plus a CRF
over BIO labels. Every head reads the same encoder output, so a document is encoded once
and then decoded once per head.

Decoding is Viterbi over the CRF; each entity's confidence is the smallest marginal
probability (forward-backward) of its labels, as python-crfsuite reports it for the CRF
models, so the merge rules in :mod:`khabar.transforms.entities` treat both kinds alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from khabar.transforms.entities_kernel import (
    gather_projections,
    lstm_cell,
    viterbi_marginals,
    viterbi_marginals_many,
)

#: Persian and Arabic-Indic digits -> ASCII (``str.translate`` table).
DIGIT_FOLD = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_FOLDABLE = re.compile("[۰-۹٠-٩]+")
_ANY_DIGIT = re.compile(r"\d")


def fold_digits(text: str) -> str:
    """Persian and Arabic-Indic digits -> ASCII, as ``text.translate`` with the digit
    table gives, but translating only the digit runs: ``str.translate`` with a table
    costs about 0.4 us a character on non-ASCII text (measured: 0.83 against 0.04 ms
    for an article's 2,087 characters)."""
    if _FOLDABLE.search(text) is None:
        return text
    return _FOLDABLE.sub(_fold_run, text)


def _fold_run(match: re.Match[str]) -> str:
    return match.group().translate(DIGIT_FOLD)


#: Words whose input projection is kept (4 KB each: 64 MB at most).
PROJECTION_ROWS = 16_384


def word_key(word: str) -> str:
    """The form a word is looked up by: lower case, every digit folded to ``0``."""
    return _ANY_DIGIT.sub("0", fold_digits(word.lower()))


def _strings(blob: np.ndarray) -> list[str]:
    return bytes(blob).decode("utf-8").split("\n")


def pack_strings(items: Sequence[str]) -> np.ndarray:
    """Strings -> one uint8 array (``\\n``-joined UTF-8), the form the ``.npz`` keeps them in."""
    if any("\n" in s for s in items):
        raise ValueError("strings may not contain a newline")
    return np.frombuffer("\n".join(items).encode("utf-8"), dtype=np.uint8)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class BiLSTMCRF:
    """Load an exported network and label sentences with it (one or more heads)."""

    def __init__(self, path: Path) -> None:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        self.words = {w: i for i, w in enumerate(_strings(arrays.pop("vocab_words")))}
        self.chars = {c: i for i, c in enumerate(_strings(arrays.pop("vocab_chars")))}
        self.gaz = {g: i for i, g in enumerate(_strings(arrays.pop("vocab_gaz")))}
        #: Training settings and history, as the trainer recorded them.
        self.meta: dict = json.loads(bytes(arrays.pop("meta")).decode()) if "meta" in arrays else {}
        self.heads: dict[str, dict[str, np.ndarray | list[str]]] = {}
        for name in _strings(arrays.pop("heads")):
            self.heads[name] = {
                "tags": _strings(arrays.pop(f"{name}.tags")),
                "w": arrays.pop(f"{name}.w").astype(np.float32),
                "b": arrays.pop(f"{name}.b").astype(np.float32),
                "trans": arrays.pop(f"{name}.trans").astype(np.float64),
                "start": arrays.pop(f"{name}.start").astype(np.float64),
                "end": arrays.pop(f"{name}.end").astype(np.float64),
            }
        f32 = {k: v.astype(np.float32) for k, v in arrays.items()}
        self.wemb = f32["wemb"]
        self.cemb = f32["cemb"]
        self.conv_w = f32["conv_w"]  # (filters, char_dim, width)
        self.conv_b = f32["conv_b"]
        self.gemb = f32["gemb"]
        self.max_chars = int(arrays["max_chars"])
        # Gates reordered to (input, forget, output, cell) and the three sigmoid gates'
        # rows halved, so that one tanh over all four gives them: sigmoid(x) = 0.5 *
        # tanh(x / 2) + 0.5. Both directions' input projections are one matrix (input, 8H).
        hid = f32["fw_whh"].shape[1]
        self.hidden = hid
        perm = np.r_[0 : 2 * hid, 3 * hid : 4 * hid, 2 * hid : 3 * hid]
        scale = np.r_[np.full(3 * hid, 0.5), np.ones(hid)].astype(np.float32)

        def fused(name: str) -> np.ndarray:
            return f32[name][perm] * (scale[:, None] if f32[name].ndim == 2 else scale)

        self.w_in = np.ascontiguousarray(np.concatenate([fused("fw_wih"), fused("bw_wih")]).T)
        self.b_in = np.concatenate([fused("fw_b"), fused("bw_b")])
        self.w_hh = [
            np.ascontiguousarray(fused("fw_whh").T),
            np.ascontiguousarray(fused("bw_whh").T),
        ]
        #: PyTorch's layout, for the reference implementation the tests compare against.
        self.torch_weights = {
            k: f32[k] for k in ("fw_wih", "fw_whh", "fw_b", "bw_wih", "bw_whh", "bw_b")
        }
        width = self.conv_w.shape[2]
        # (width * char_dim, filters): a window of characters flattened, times one matrix.
        self.conv_flat = np.ascontiguousarray(
            self.conv_w.transpose(2, 1, 0).reshape(width * self.cemb.shape[1], -1)
        )
        word_dim = self.wemb.shape[1] + self.conv_w.shape[0]
        #: The word part of the input projection (embedding and char CNN rows) ...
        self.w_word = np.ascontiguousarray(self.w_in[:word_dim])
        #: ... and the gazetteer part, one row per gazetteer tag, with both biases.
        self.gaz_proj = (self.gemb @ self.w_in[word_dim:] + self.b_in).astype(np.float32)
        self._gates = self.w_in.shape[1]
        #: Rows of the per-word projection table (see :meth:`project`).
        self.projection_rows = PROJECTION_ROWS
        self._rows: dict[str, int] = {}
        self._table = np.empty((0, self._gates), np.float32)
        self._uses = np.zeros(0, np.int64)
        self._scratch = np.empty(0, np.float32)

    # ------------------------------------------------------------------ features

    def _words_features(self, words: Sequence[str]) -> np.ndarray:
        """Each word's embedding and character-CNN features (the input before the
        gazetteer), ``(len(words), dim)``, all words at once: their characters padded to
        one length, one product for every window of every word, the positions past each
        word's end left out of the max (one word at a time cost 36 us a word)."""
        ids = [
            [self.chars.get(ch, 1) for ch in fold_digits(w)[: self.max_chars]] for w in words
        ]
        lengths = np.array([len(i) for i in ids])
        longest = max(1, int(lengths.max()))
        width = self.conv_w.shape[2]
        table = np.zeros((len(words), longest + width - 1), np.int64)
        mask = np.zeros_like(table, dtype=bool)
        for k, row in enumerate(ids):
            table[k, width // 2 : width // 2 + len(row)] = row
            mask[k, width // 2 : width // 2 + len(row)] = True
        emb = self.cemb[table] * mask[:, :, None]  # padding is zeros, as for one word
        windows = np.concatenate([emb[:, j : j + longest] for j in range(width)], axis=2)
        conv = windows @ self.conv_flat + self.conv_b
        conv[np.arange(longest)[None, :] >= lengths[:, None]] = -np.inf
        char_feat = np.maximum(conv.max(axis=1), 0.0)
        wids = [self.words.get(word_key(w), 1) for w in words]
        return np.concatenate([self.wemb[wids], char_feat], axis=1)

    def inputs(self, words: Sequence[str], gaz: Sequence[str | None]) -> np.ndarray:
        """Per-token input vectors: word embedding, char CNN, gazetteer match."""
        base = self._words_features(words)
        g = self.gemb[self._gaz_ids(gaz)]
        return np.concatenate([base, g], axis=1)

    def _gaz_ids(self, gaz: Sequence[str | None]) -> list[int]:
        return [self.gaz.get(tag, 1) if tag else 1 for tag in gaz]

    def project(self, words: Sequence[str], gaz: Sequence[str | None]) -> np.ndarray:
        """``inputs(words, gaz) @ w_in + b_in`` (both directions' gate inputs, ``(len, 8H)``)
        without the product for the words seen before.

        The input projection is linear, so it splits into a word part (embedding and
        character CNN, which depend on the word alone) and a gazetteer part (one row per
        gazetteer tag, computed once). The word part is kept per word in a table of
        ``projection_rows`` rows (64 MB at 16,384; grown as needed); when it is full the
        less used half is dropped (hit rate over news-fa's 1.3 M tokens: 94 %, against
        92 % for dropping all). The product was 2 of the 8.4 ms per article the encoder
        took (measured on 400 farsnews articles)."""
        rows = self._table_rows(words)
        if rows is None:
            return self._project_untabled(words, gaz)
        return self._table[rows] + self.gaz_proj[self._gaz_ids(gaz)]

    def _project_untabled(self, words: Sequence[str], gaz: Sequence[str | None]) -> np.ndarray:
        """:meth:`project` for more distinct words than the table holds: computed here."""
        unique = list(dict.fromkeys(words))
        word_part = self._words_features(unique) @ self.w_word
        local = {w: i for i, w in enumerate(unique)}
        return word_part[[local[w] for w in words]] + self.gaz_proj[self._gaz_ids(gaz)]

    def _table_rows(self, words: Sequence[str]) -> np.ndarray | None:
        """The projection table's row of each word, the missing words' rows computed and
        added first (see :meth:`project`); ``None`` when the words are more distinct words
        than the table holds."""
        index = self._rows
        rows = [index.get(w, -1) for w in words]
        missing = list(dict.fromkeys(w for w, r in zip(words, rows, strict=True) if r < 0))
        if missing:
            if len(index) + len(missing) > self.projection_rows:
                unique = list(dict.fromkeys(words))
                if len(unique) > self.projection_rows:
                    return None
                self._evict(len(missing))
                index = self._rows
                missing = [w for w in unique if w not in index]
                if len(index) + len(missing) > self.projection_rows:
                    self.reset_projections()  # the kept half would not leave room
                    index, missing = self._rows, unique
            start = len(index)
            need = start + len(missing)
            if need > len(self._table):
                grown = np.empty(
                    (min(self.projection_rows, max(need, 2 * len(self._table))), self._gates),
                    np.float32,
                )
                grown[:start] = self._table[:start]
                self._table = grown
                self._uses.resize(len(grown), refcheck=False)
            self._table[start:need] = self._words_features(missing) @ self.w_word
            self._uses[start:need] = 0
            for k, w in enumerate(missing):
                index[w] = start + k
            rows = [index[w] for w in words]
        found = np.array(rows, np.int64)
        self._uses += np.bincount(found, minlength=len(self._uses))[: len(self._uses)]
        return found

    def reset_projections(self, rows: int | None = None) -> None:
        """Empty the projection table (and set its size to ``rows`` when given)."""
        if rows is not None:
            self.projection_rows = rows
        self._rows = {}
        self._table = np.empty((0, self._gates), np.float32)
        self._uses = np.zeros(0, np.int64)

    def _evict(self, room: int) -> None:
        """Keep the more used half of the table (at most ``projection_rows - room`` rows)."""
        keep_n = max(0, min(self.projection_rows // 2, self.projection_rows - room))
        words = list(self._rows)
        uses = self._uses[: len(words)]
        keep = np.sort(np.argsort(-uses, kind="stable")[:keep_n])
        self._table[: len(keep)] = self._table[keep]
        self._uses[: len(keep)] = uses[keep] // 2
        self._rows = {words[i]: k for k, i in enumerate(keep)}

    # ------------------------------------------------------------------ encoder

    def encode(self, sentences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Input matrices of several sentences -> BiLSTM outputs ``(length, 2H)`` each."""
        return self.encode_projected([x @ self.w_in + self.b_in for x in sentences])

    def encode_words(
        self, sentences: Sequence[Sequence[str]], gazes: Sequence[Sequence[str | None]]
    ) -> list[np.ndarray]:
        """BiLSTM outputs of several sentences given their words and gazetteer tags:
        :meth:`encode_projected` of :meth:`project`, with each token's projection copied
        from the table (plus its gazetteer row) straight into the padded batch
        (:func:`gather_projections`), without the intermediate arrays."""
        words = [w for sentence in sentences for w in sentence]
        gaz = [g for tags in gazes for g in tags]
        rows = self._table_rows(words)
        lengths = np.array([len(s) for s in sentences], np.int64)
        if rows is None or not len(words):
            cuts = np.cumsum(lengths)[:-1]
            flat = self._project_untabled(words, gaz) if rows is None else self.project(words, gaz)
            return self.encode_projected(np.split(flat, cuts))
        starts = np.zeros(len(sentences), np.int64)
        starts[1:] = np.cumsum(lengths)[:-1]
        order = np.argsort(-lengths, kind="stable")
        padded = self._padded(len(sentences), int(lengths.max()))
        gather_projections(
            self._table,
            rows,
            self.gaz_proj,
            np.array(self._gaz_ids(gaz), np.int64),
            starts[order],
            lengths[order],
            padded,
        )
        return self._encode_padded(padded, lengths, order)

    def encode_projected(self, projected: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Projected inputs (:meth:`project`) of several sentences -> BiLSTM outputs.

        The sentences are run side by side, longest first: each time step is one product
        for the sentences still running at that step (a prefix, as they are sorted), so
        padding costs nothing (it is never read, nor written)."""
        lengths = np.array([len(s) for s in projected], np.int64)
        order = np.argsort(-lengths, kind="stable")
        padded = self._padded(len(projected), int(lengths.max()))
        for rank, i in enumerate(order):
            padded[rank, : lengths[i]] = projected[i]
        return self._encode_padded(padded, lengths, order)

    def _padded(self, sentences: int, steps: int) -> np.ndarray:
        """An uninitialized ``(sentences, steps, 8H)`` input batch, a view of a buffer kept
        between calls (a fresh one of this size is new memory each time, and its page
        faults cost more than filling it); only the encoder reads it, before returning.
        The buffer is as large as the largest batch seen: at most 64 sentences of 250
        tokens, 65 MB at H = 128 (the same peak as when each batch had its own array; 38 MB
        after 1,000 farsnews articles)."""
        size = sentences * steps * self._gates
        if len(self._scratch) < size:
            self._scratch = np.empty(size, np.float32)
        return self._scratch[:size].reshape(sentences, steps, self._gates)

    def _encode_padded(
        self, padded: np.ndarray, lengths: np.ndarray, order: np.ndarray
    ) -> list[np.ndarray]:
        """Both LSTM directions over ``padded`` (sentence ``order[rank]`` in row ``rank``,
        longest first) -> each sentence's ``(length, 2H)`` outputs, in input order."""
        ordered = lengths[order]
        n, hid, steps = len(lengths), self.hidden, padded.shape[1]
        live = (ordered[:, None] > np.arange(steps)).sum(axis=0)
        out = np.empty((n, steps, 2 * hid), np.float32)
        for direction in (0, 1):
            _lstm_fused(
                padded,
                live,
                self.w_hh[direction],
                direction == 1,
                out,
                gate_col=4 * hid * direction,
                out_col=hid * direction,
            )
        result: list[np.ndarray] = [np.empty(0)] * n
        for rank, i in enumerate(order):
            result[i] = out[rank, : ordered[rank]]
        return result

    def encode_reference(self, sentences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`encode` written plainly (PyTorch's gate layout, masked padding)."""
        lengths = np.array([len(s) for s in sentences], np.int64)
        n, hid, steps = len(sentences), self.hidden, int(lengths.max())
        halves = []
        for d in ("fw", "bw"):
            w = self.torch_weights
            padded = np.zeros((n, steps, 4 * hid), np.float32)
            for i, x in enumerate(sentences):
                padded[i, : len(x)] = x @ w[f"{d}_wih"].T + w[f"{d}_b"]
            halves.append(lstm_direction(padded, lengths, w[f"{d}_whh"].T, d == "bw"))
        out = np.concatenate(halves, axis=2)
        return [out[i, :length] for i, length in enumerate(lengths)]

    # ------------------------------------------------------------------ CRF heads

    def decode(
        self, head: str, states: np.ndarray, o_bias: float = 0.0
    ) -> tuple[list[str], np.ndarray]:
        """Viterbi labels of one sentence and each label's marginal probability;
        ``o_bias`` is subtracted from the O label's emission score first."""
        spec = self.heads[head]
        emis = (states @ spec["w"] + spec["b"]).astype(np.float64)
        if o_bias:
            emis[:, spec["tags"].index("O")] -= o_bias
        labels, marginals = viterbi_marginals(emis, spec["trans"], spec["start"], spec["end"])
        tags = spec["tags"]
        return [tags[k] for k in labels], marginals

    def decode_many(
        self, head: str, states: Sequence[np.ndarray], o_bias: float = 0.0
    ) -> list[tuple[list[str], np.ndarray]]:
        """:meth:`decode` of several sentences: one product for their emission scores and
        one compiled call for their paths and marginals."""
        spec = self.heads[head]
        lengths = [len(s) for s in states]
        offsets = np.zeros(len(states) + 1, np.int64)
        offsets[1:] = np.cumsum(lengths)
        emis = (np.concatenate(states) @ spec["w"] + spec["b"]).astype(np.float64)
        if o_bias:
            emis[:, spec["tags"].index("O")] -= o_bias
        paths, margs = viterbi_marginals_many(
            emis, offsets, spec["trans"], spec["start"], spec["end"]
        )
        tags = spec["tags"]
        labels = [tags[k] for k in paths.tolist()]
        return [
            (labels[offsets[i] : offsets[i + 1]], margs[offsets[i] : offsets[i + 1]])
            for i in range(len(states))
        ]


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def viterbi_marginals_numpy(
    emis: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[list[int], np.ndarray]:
    """Reference (plain numpy) of :func:`khabar.transforms.entities_kernel.viterbi_marginals`."""
    steps, _ = emis.shape
    score = start + emis[0]
    back = np.zeros(emis.shape, np.int64)
    alpha = np.zeros(emis.shape)
    alpha[0] = score
    for t in range(1, steps):
        s = score[:, None] + trans
        back[t] = s.argmax(axis=0)
        score = s.max(axis=0) + emis[t]
        alpha[t] = _logsumexp(alpha[t - 1][:, None] + trans, axis=0) + emis[t]
    best = [int((score + end).argmax())]
    for t in range(steps - 1, 0, -1):
        best.append(int(back[t, best[-1]]))
    best.reverse()
    beta = np.zeros(emis.shape)
    beta[-1] = end
    for t in range(steps - 2, -1, -1):
        beta[t] = _logsumexp(trans + (emis[t + 1] + beta[t + 1])[None, :], axis=1)
    log_z = _logsumexp(alpha[-1] + end, axis=0)
    idx = np.arange(steps)
    marg = np.exp(alpha[idx, best] + beta[idx, best] - log_z)
    return np.array(best), marg


def _lstm_fused(
    proj: np.ndarray,
    live: np.ndarray,
    w_hh: np.ndarray,
    reverse: bool,
    out: np.ndarray,
    gate_col: int = 0,
    out_col: int = 0,
) -> None:
    """One LSTM direction, gates fused (see :class:`BiLSTMCRF`), sentences sorted longest
    first: at step ``t`` only the first ``live[t]`` sentences run. ``proj[:, t,
    gate_col:gate_col + 4H]`` holds the direction's projected inputs; the hidden states go
    to ``out[:, t, out_col:out_col + H]``. Per step: the recurrent product in BLAS, then
    every element op in one compiled pass (:func:`lstm_cell`, with a vectorized tanh)."""
    n = proj.shape[0]
    hid = w_hh.shape[0]
    h = np.zeros((n, hid), np.float32)
    c = np.zeros((n, hid), np.float32)
    recurrent = np.empty((n, 4 * hid), np.float32)
    steps = proj.shape[1]
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        k = int(live[t])
        np.matmul(h[:k], w_hh, out=recurrent[:k])
        lstm_cell(recurrent, proj, t, gate_col, c, h, out, out_col, k)


def lstm_direction(
    proj: np.ndarray, lengths: np.ndarray, w_hh: np.ndarray, reverse: bool
) -> np.ndarray:
    """One LSTM direction over padded sentences (the reference implementation).

    ``proj`` is ``(sentences, steps, 4H)``: the input projection plus both biases, gates
    in PyTorch's order (input, forget, cell, output); ``w_hh`` is ``(H, 4H)``. Returns
    the hidden states ``(sentences, steps, H)``; the backward direction starts at each
    sentence's own last token."""
    n, steps, four = proj.shape
    hid = four // 4
    out = np.zeros((n, steps, hid), np.float32)
    h = np.zeros((n, hid), np.float32)
    c = np.zeros((n, hid), np.float32)
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        gates = proj[:, t] + h @ w_hh
        i_g = _sigmoid(gates[:, :hid])
        f_g = _sigmoid(gates[:, hid : 2 * hid])
        g_g = np.tanh(gates[:, 2 * hid : 3 * hid])
        o_g = _sigmoid(gates[:, 3 * hid :])
        live = (t < lengths)[:, None]
        c = np.where(live, f_g * c + i_g * g_g, c)
        h = np.where(live, o_g * np.tanh(c), h)
        out[:, t] = np.where(live, h, 0.0)
    return out

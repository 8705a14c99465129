"""The numpy BiLSTM-CRF: CRF decoding against brute force, the compiled kernel against
the numpy reference, the batched LSTM against a one-sentence-at-a-time loop, and a
network file written in the export format read back and run."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khabar.transforms.entities_kernel import tanh_array, viterbi_marginals
from khabar.transforms.entities_nn import (
    BiLSTMCRF,
    fold_digits,
    lstm_direction,
    pack_strings,
    viterbi_marginals_numpy,
    word_key,
)
from tests.conftest import ROOT


def brute_force(emis, trans, start, end):
    """Every label path scored: the best one and each position's label marginals."""
    steps, k = emis.shape
    scores = {}
    for path in itertools.product(range(k), repeat=steps):
        s = start[path[0]] + emis[0, path[0]] + end[path[-1]]
        for t in range(1, steps):
            s += trans[path[t - 1], path[t]] + emis[t, path[t]]
        scores[path] = s
    best = max(scores, key=scores.get)
    z = sum(math.exp(v) for v in scores.values())
    marg = [
        sum(math.exp(v) for p, v in scores.items() if p[t] == best[t]) / z for t in range(steps)
    ]
    return list(best), marg


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_viterbi_and_marginals_match_brute_force(steps: int) -> None:
    rng = np.random.default_rng(steps)
    for _ in range(5):
        k = 3
        emis = rng.normal(0, 2, (steps, k))
        trans = rng.normal(0, 1, (k, k))
        trans[0, 2] = -1e4  # a forbidden transition, as the BIO constraints add
        start, end = rng.normal(0, 1, k), rng.normal(0, 1, k)
        best, marg = brute_force(emis, trans, start, end)
        for run in (viterbi_marginals, viterbi_marginals_numpy):
            path, got = run(emis, trans, start, end)
            assert list(path) == best
            np.testing.assert_allclose(got, marg, rtol=1e-9, atol=1e-12)


def test_kernel_matches_reference_on_long_sentences() -> None:
    rng = np.random.default_rng(7)
    for steps in (30, 120):
        k = 15
        emis = rng.normal(0, 8, (steps, k))  # large scores: the scaling must hold up
        trans, start, end = rng.normal(0, 3, (k, k)), rng.normal(0, 3, k), rng.normal(0, 3, k)
        p1, m1 = viterbi_marginals(emis, trans, start, end)
        p2, m2 = viterbi_marginals_numpy(emis, trans, start, end)
        assert list(p1) == list(p2)
        np.testing.assert_allclose(m1, m2, rtol=1e-7)
        assert np.all((m1 > 0) & (m1 <= 1 + 1e-12))


def one_lstm(x: np.ndarray, w_hh: np.ndarray, reverse: bool) -> np.ndarray:
    """A single sentence, step by step, written out plainly."""
    hid = w_hh.shape[0]
    h, c = np.zeros(hid), np.zeros(hid)
    out = np.zeros((len(x), hid))
    order = range(len(x) - 1, -1, -1) if reverse else range(len(x))

    def sig(v):
        return 1 / (1 + np.exp(-v))

    for t in order:
        g = x[t] + h @ w_hh
        i, f, gg, o = (
            sig(g[:hid]),
            sig(g[hid : 2 * hid]),
            np.tanh(g[2 * hid : 3 * hid]),
            sig(g[3 * hid :]),
        )
        c = f * c + i * gg
        h = o * np.tanh(c)
        out[t] = h
    return out


def test_batched_lstm_matches_one_sentence_at_a_time() -> None:
    rng = np.random.default_rng(3)
    hid, lengths = 4, np.array([5, 1, 3])
    proj = rng.normal(0, 1, (3, 5, 4 * hid)).astype(np.float32)
    w_hh = rng.normal(0, 0.5, (hid, 4 * hid)).astype(np.float32)
    for reverse in (False, True):
        out = lstm_direction(proj, lengths, w_hh, reverse)
        for i, n in enumerate(lengths):
            np.testing.assert_allclose(out[i, :n], one_lstm(proj[i, :n], w_hh, reverse), atol=1e-5)
            assert not out[i, n:].any()  # padding stays out of the states


def write_net(path: Path, rng: np.random.Generator, hid: int = 6) -> dict:
    words = ["<pad>", "<unk>", "تهران", "0000", "علی"]
    chars = ["<pad>", "<unk>", *"تهرانعلی0"]
    gaz = ["<pad>", "<unk>", "B-LOCATION", "I-LOCATION"]
    tags = ["O", "B-LOCATION", "I-LOCATION", "B-PERSON", "I-PERSON"]
    dim = 5 + 7 + 3  # word + char filters + gazetteer

    def r(*shape):
        return rng.normal(0, 0.5, shape).astype(np.float16)

    arrays = {
        "vocab_words": pack_strings(words),
        "vocab_chars": pack_strings(chars),
        "vocab_gaz": pack_strings(gaz),
        "heads": pack_strings(["a", "b"]),
        "max_chars": np.array(20),
        "meta": pack_strings(["{}"]),
        "wemb": r(len(words), 5),
        "cemb": r(len(chars), 4),
        "conv_w": r(7, 4, 3),
        "conv_b": r(7),
        "gemb": r(len(gaz), 3),
    }
    for d in ("fw", "bw"):
        arrays |= {f"{d}_wih": r(4 * hid, dim), f"{d}_whh": r(4 * hid, hid), f"{d}_b": r(4 * hid)}
    for head in ("a", "b"):
        arrays |= {
            f"{head}.tags": pack_strings(tags),
            f"{head}.w": r(2 * hid, len(tags)),
            f"{head}.b": r(len(tags)),
            f"{head}.trans": rng.normal(0, 1, (5, 5)).astype(np.float32),
            f"{head}.start": rng.normal(0, 1, 5).astype(np.float32),
            f"{head}.end": rng.normal(0, 1, 5).astype(np.float32),
        }
    np.savez_compressed(path, **arrays)
    return arrays


def test_network_file_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    arrays = write_net(tmp_path / "net.npz", rng)
    net = BiLSTMCRF(tmp_path / "net.npz")
    assert set(net.heads) == {"a", "b"} and net.hidden == 6
    words = ["علی", "به", "تهران", "۱۴۰۲"]
    x = net.inputs(words, ["B-LOCATION", None, "B-LOCATION", None])
    assert x.shape == (4, 15)
    # The word part: known words by their row, the unknown one by <unk>, digits folded.
    assert word_key("۱۴۰۲") == "0000"
    np.testing.assert_array_equal(x[0, :5], arrays["wemb"][4].astype(np.float32))
    np.testing.assert_array_equal(x[1, :5], arrays["wemb"][1].astype(np.float32))
    np.testing.assert_array_equal(x[3, :5], arrays["wemb"][3].astype(np.float32))
    # The char CNN part, computed directly: zero-padded width-3 convolution, ReLU, max.
    cemb = arrays["cemb"].astype(np.float32)
    ids = [["<pad>", "<unk>", *"تهرانعلی0"].index(ch) for ch in "تهران"]
    seq = np.vstack([np.zeros(4), cemb[ids], np.zeros(4)])
    w, b = arrays["conv_w"].astype(np.float32), arrays["conv_b"].astype(np.float32)
    conv = [sum(w[:, :, j] @ seq[p + j] for j in range(3)) + b for p in range(len(ids))]
    np.testing.assert_allclose(x[2, 5:12], np.maximum(np.max(conv, axis=0), 0), atol=1e-5)
    np.testing.assert_array_equal(x[2, 12:], arrays["gemb"][2].astype(np.float32))
    # Sentences encoded together give what each gives alone, and the fused, sorted,
    # prefix-batched encoder gives what the plain reference (PyTorch's layout) gives.
    other = net.inputs(["تهران"], [None])
    third = net.inputs(["علی", "تهران"], [None, None])
    together = net.encode([other, x, third])
    alone = [net.encode([s])[0] for s in (other, x, third)]
    reference = net.encode_reference([other, x, third])
    for a, b_, r in zip(together, alone, reference, strict=True):
        np.testing.assert_allclose(a, b_, atol=1e-6)
        np.testing.assert_allclose(a, r, atol=1e-5)
    together = together[1:2]
    labels, marg = net.decode("a", together[0])
    assert len(labels) == 4 and all(lab in net.heads["a"]["tags"] for lab in labels)
    assert np.all((marg > 0) & (marg <= 1 + 1e-9))
    # The O bias: the same decode on emissions with the O score lowered by hand.
    spec = net.heads["a"]
    emis = (together[0] @ spec["w"] + spec["b"]).astype(np.float64)
    o = spec["tags"].index("O")
    for bias in (0.7, 50.0):
        shifted = emis.copy()
        shifted[:, o] -= bias
        best, _ = viterbi_marginals_numpy(shifted, spec["trans"], spec["start"], spec["end"])
        biased, _ = net.decode("a", together[0], bias)
        assert biased == [spec["tags"][k] for k in best]
    assert "O" not in net.decode("a", together[0], 50.0)[0]  # a huge bias leaves no O


def test_trainer_looks_words_up_as_the_tagger_does() -> None:
    """The PyTorch trainer (another interpreter, no khabar imports) keeps its own copy of
    the word key and character folding; a difference would silently map words to other
    embeddings at tagging time. Its functions are read from the source, without torch."""
    import ast

    source = (ROOT / "pipeline" / "train" / "ner_nn.py").read_text(
        encoding="utf-8"
    )
    tree = ast.parse(source)
    keep = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name == "word_key")
        or (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", "") == "DIGITS" for t in node.targets)
        )
    ]
    namespace: dict = {"re": __import__("re")}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "train_ner_nn", "exec"), namespace)
    from khabar.transforms import entities_nn

    for word in ["Tehran", "۱۴۰۲", "٣٤٥", "2024", "تهران", "Ab1۲٣", "İstanbul", "ΣΟΦΙΑ"]:
        assert namespace["word_key"](word) == entities_nn.word_key(word)
        assert word.translate(namespace["DIGITS"]) == word.translate(entities_nn.DIGIT_FOLD)


def test_projection_table_gives_the_plain_product(tmp_path: Path) -> None:
    """``project`` (word part from the table, gazetteer part per tag) is the input matrix
    times the input weights, however often the table fills up and drops rows."""
    rng = np.random.default_rng(5)
    write_net(tmp_path / "net.npz", rng)
    net = BiLSTMCRF(tmp_path / "net.npz")
    vocab = ["علی", "تهران", "به", "۱۴۰۲", "رفت", "و", "آمد", "x", "Tehran", "۱۲"]
    gaz_tags = [None, "B-LOCATION", "I-LOCATION", "B-UNKNOWN"]
    for rows in (3, 4, 16):  # smaller than a sentence's new words, full often, roomy
        net.reset_projections(rows)
        for _ in range(30):
            n = int(rng.integers(1, 9))
            words = [vocab[i] for i in rng.integers(0, len(vocab), n)]
            gaz = [gaz_tags[i] for i in rng.integers(0, len(gaz_tags), n)]
            expected = net.inputs(words, gaz) @ net.w_in + net.b_in
            np.testing.assert_allclose(net.project(words, gaz), expected, atol=1e-5)
            assert len(net._rows) <= rows and len(net._table) <= rows
            assert sorted(net._rows.values()) == list(range(len(net._rows)))


def test_decode_many_is_decode_of_each(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    write_net(tmp_path / "net.npz", rng)
    net = BiLSTMCRF(tmp_path / "net.npz")
    states = [rng.normal(0, 1, (n, 2 * net.hidden)).astype(np.float32) for n in (1, 7, 3, 12)]
    for head in ("a", "b"):
        for bias in (0.0, 1.5):
            together = net.decode_many(head, states, bias)
            for state, (labels, marg) in zip(states, together, strict=True):
                alone_labels, alone_marg = net.decode(head, state, bias)
                assert labels == alone_labels
                # the emission product is float32: OpenBLAS may sum one sentence's row (gemv)
                # and the same row in a batch (gemm) in another order, by about 1e-9 here on
                # some CPUs; the marginals are computed in float64 from there
                np.testing.assert_allclose(marg, alone_marg, rtol=1e-6)


def test_fast_tanh_is_tanh_to_float32_precision() -> None:
    """The LSTM's vectorized tanh (Eigen's rational form) against float64 tanh, over the
    range where it is not flat and far beyond, on both sides of the clamp."""
    x = np.concatenate(
        [np.linspace(-12, 12, 400_001), [-1e30, -9.0, -8.99, 0.0, 1e-30, 8.99, 9.0, 1e30]]
    ).astype(np.float32)
    got = tanh_array(x).astype(np.float64)
    np.testing.assert_allclose(got, np.tanh(x.astype(np.float64)), rtol=0, atol=5e-7)
    assert got[np.abs(x) >= 9].tolist() == np.sign(x[np.abs(x) >= 9]).tolist()
    assert np.all(np.abs(got) <= 1.0 + 3e-7)  # two float32 steps past 1 at most


def test_compiled_lstm_step_matches_the_reference_on_long_sentences(tmp_path: Path) -> None:
    """The compiled step (fast tanh, every element op in one pass) against the plain numpy
    reference over 250 steps, where errors would grow if they could."""
    rng = np.random.default_rng(21)
    write_net(tmp_path / "net.npz", rng, hid=32)
    net = BiLSTMCRF(tmp_path / "net.npz")
    sentences = [
        rng.normal(0, 1, (n, net.w_in.shape[0])).astype(np.float32) for n in (250, 1, 17, 250, 3)
    ]
    for got, want in zip(net.encode(sentences), net.encode_reference(sentences), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-5)


def test_encode_words_is_encode_of_the_projections(tmp_path: Path) -> None:
    """``encode_words`` (table rows gathered straight into the padded batch) gives what
    ``encode_projected`` of ``project`` gives, with a roomy table, one that fills up, and
    one smaller than a batch's distinct words (the fallback)."""
    rng = np.random.default_rng(13)
    write_net(tmp_path / "net.npz", rng)
    net = BiLSTMCRF(tmp_path / "net.npz")
    vocab = ["علی", "تهران", "به", "۱۴۰۲", "رفت", "و", "آمد", "x", "Tehran", "۱۲", "."]
    gaz_tags = [None, "B-LOCATION", "I-LOCATION", "B-UNKNOWN"]
    for rows in (4, 8, 64):
        net.reset_projections(rows)
        for _ in range(20):
            lengths = rng.integers(1, 12, int(rng.integers(1, 6)))
            words = [[vocab[i] for i in rng.integers(0, len(vocab), n)] for n in lengths]
            gaz = [[gaz_tags[i] for i in rng.integers(0, len(gaz_tags), n)] for n in lengths]
            got = net.encode_words(words, gaz)
            want = net.encode(
                [net.inputs(w, g) for w, g in zip(words, gaz, strict=True)]
            )
            assert [len(g) for g in got] == list(lengths)
            for a, b in zip(got, want, strict=True):
                np.testing.assert_allclose(a, b, atol=1e-5)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("۰۱۲۹٠٥٩0189abcAB تهران\n\u200c")), max_size=40))
def test_fold_digits_is_the_digit_table(text: str) -> None:
    assert fold_digits(text) == text.translate(
        str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
    )

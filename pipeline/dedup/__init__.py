"""Deduplication, all of it in Beam: exact (``exact.py``) and near (``near.py``), batch
and streaming, composed once with its settings (``compose.py``). The Beam-free keys,
fingerprints, MinHash and clustering are in ``transforms/dedup.py`` and
``transforms/neardup.py``."""

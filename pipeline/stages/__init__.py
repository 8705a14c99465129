"""Beam transforms that touch the outside world: reading input files, writing Avro."""

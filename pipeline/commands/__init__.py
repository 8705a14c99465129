"""The ``khabar`` commands (``cli.py`` only dispatches to them)."""

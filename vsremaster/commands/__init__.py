"""Subcommands of `python -m vsremaster` (one module each)."""

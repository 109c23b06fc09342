"""Runnable examples of mitools: ``python -m examples.<name>`` from a clone of the repository."""

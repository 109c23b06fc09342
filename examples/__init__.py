"""Runnable programs built on mitools (not installed with the library).

``examples.image_text`` is the image-text local-MI pretraining pipeline of Liao, Moyer et al.
(MICCAI 2021): run it with ``python -m examples.image_text all --preset quick``.
"""

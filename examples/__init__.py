"""Runnable examples of mitools: ``python -m examples.<name>`` from a clone of the repository.

``examples.image_text`` is the image-text local-MI pretraining pipeline of Liao, Moyer et al.
(MICCAI 2021): ``python -m examples.image_text all --preset quick``.
"""

"""Local-MI pretraining of image and text encoders (Liao, Moyer et al., MICCAI 2021).

Run ``python -m examples.image_text all --preset quick``. Modules:

* :mod:`.data`: seeded synthetic radiographs with reports and labels (the default data);
* :mod:`.mimic`: the MIMIC-CXR-JPG loader (real data);
* :mod:`.text`: the word-level tokenizer;
* :mod:`.models`: the image encoder (M x M x D cells + pooled vector) and the text encoder;
* :mod:`.objective`: the local / global MI objectives, built from mitools;
* :mod:`.train`: data preparation and pretraining (checkpoints, resume, torchrun);
* :mod:`.evaluate`: downstream regimes, metrics, pointing score, figure, results table;
* :mod:`.config`: the run configuration and presets.
"""

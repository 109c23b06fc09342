"""Local-MI pretraining of image and text encoders (Liao, Moyer et al., MICCAI 2021).

Run ``python -m examples.image_text all --preset quick``. Modules:

* :mod:`.data`: seeded synthetic radiographs with reports and labels (the default data);
* :mod:`.sites`: the findings' names, zones and sites, and their cells on the feature grid;
* :mod:`.reports`: the synthetic reports' sentence templates;
* :mod:`.mimic`: the MIMIC-CXR-JPG loader (real data);
* :mod:`.text`: the word-level tokenizer;
* :mod:`.models`: the image encoder (M x M x D cells + pooled vector) and the text encoder;
* :mod:`.objective`: the local / global MI objectives, built from mitools;
* :mod:`.train`: data preparation and pretraining (checkpoints, resume, torchrun);
* :mod:`.evaluate`: downstream regimes, probes (pooled and cell grid), metrics;
* :mod:`.pointing`: per-cell MI maps, the pointing score and its baselines, the figure;
* :mod:`.report`: the results tables and ``results.json``;
* :mod:`.config`: the run configuration and presets.
"""

"""Signals to a feature store: sources (what to read, its label, fold and group), audio (decode,
resample, check, segment), features (batched STFT images in torch), images (the one decode ->
check -> segment -> STFT path that preprocess and predict share), defaults (settings read from
the data), folds (assigned at build time), store (the memory-mapped store) and preprocess."""

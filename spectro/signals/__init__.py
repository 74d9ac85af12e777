"""Signals to a feature store: sources (what to read, its label, fold and group), audio (decode,
resample, check, segment), matfiles and tables (MATLAB .mat and CSV/TSV files of samples),
pictures (images made elsewhere: colormap inversion, crop, size), features (batched STFT images in
torch), images (the one decode -> check -> segment -> STFT path that preprocess and predict share),
defaults (settings read from the data), folds (assigned at build time), store (the memory-mapped
store) and preprocess."""

"""A store's rows for training: splits (which rows train, validate and test), feed (normalisation,
minibatches from the memory map, a normalised view for classifiers fitted once) and augment
(SpecAugment, time shift, mixup on the device)."""

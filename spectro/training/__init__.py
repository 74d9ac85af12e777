"""From a store to a run: loop (the epoch loop, no files), distributed (torchrun), classifier (the
networks as classifiers, and the one place where a model's kind matters), run (the run
directory), recorder (what each epoch writes), train, evaluate and cv."""

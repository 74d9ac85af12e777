"""The command line: :mod:`~spectro.cli.parsers` (one per command, one shared group of training
options), :mod:`~spectro.cli.commands` (call the ``spectro`` API, print) and
:mod:`~spectro.cli.main` (the ``spectro`` entry point). It holds no pipeline logic and
starts without importing torch."""

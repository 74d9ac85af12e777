"""Utilities every room uses: files (atomic JSON/CSV/text, directory swap, lock), device (which
device, at what precision, with which software), workers (decoding process pools, whether a process lives), console
(the one way library code talks to the user) and names (the depth in a model name)."""

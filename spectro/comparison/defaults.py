"""Defaults of ``compare`` (the command line shows them in its help). No torch here."""

__all__ = ["COMPARE_OUT", "COMPARE_JOBS"]

#: Output folder of ``compare`` and the runs it trains at once.
COMPARE_OUT = "compare"
COMPARE_JOBS = 1

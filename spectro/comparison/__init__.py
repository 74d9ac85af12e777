"""Several models on the same split of one store: compare (train or reuse the runs, score,
test, tabulate, draw) and report (the Markdown table and report)."""

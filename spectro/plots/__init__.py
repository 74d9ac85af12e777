"""Figures on matplotlib's Figure API (no pyplot, no backend switch): figures (examples, confusion,
curves), timeline (a recording's labels over time) and comparison (the head-to-head figure)."""

"""Across runs: compare two runs, the history file, budgets."""

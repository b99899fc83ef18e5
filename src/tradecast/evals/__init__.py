"""Evaluation: replay datasets through the desk, score it, compare with rule baselines."""

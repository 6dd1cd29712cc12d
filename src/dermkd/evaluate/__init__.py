"""Evaluation: the paper's ten measures plus honest top-1, balanced accuracy and MCC."""

"""Distillation: the paper's KD loss, hard-label objectives and the KD strategies."""

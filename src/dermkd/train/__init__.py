"""Training: optimizers, the Lightning module, run directories and the stage runner."""

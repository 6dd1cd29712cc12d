"""Data: taxonomy, folder scanning, hashing, splits, in-memory image cache, augmentation."""

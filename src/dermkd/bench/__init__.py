"""Benchmarks: every figure is a ratio, or is printed beside its reference measured in the
same run, because this machine is shared and noisy (see `common.interleave`)."""

"""Importing this module registers every benchmark in `BENCHMARKS`; `ORDER` is the order
the suite runs and reports them in (registered names missing from it come last)."""

from dermkd.bench import compute, datapath, distill, framework, inference, memory, scaling, serving  # noqa: F401,E501  (they register)

ORDER = ("framework", "distill", "datapath", "compute", "inference", "serving", "memory", "scaling")

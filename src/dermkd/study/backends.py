"""Where a study's runs execute (`dermkd study --backend`): a registry of backends, each
`(study, out_dir, resume, BackendOptions) -> rows`, all writing the same run directories
and the same results table. `local` (`study.runner`) runs them one after another in this
process; `ray` (`study.ray_backend`) runs them as Ray tasks on a local instance or a cluster.
`study.launch.backend(name)` imports both and returns one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dermkd.errors import DermkdError
from dermkd.registry import Registry

BACKENDS: Registry[Callable[..., list[dict[str, Any]]]] = Registry("study backend")


@dataclass(frozen=True)
class BackendOptions:
    retries: int = 0  # a failed run is tried again this many times, then recorded
    address: str | None = None  # ray: None starts a local instance; "auto" or "ray://head:10001" joins a cluster
    cpus_per_run: float = 1.0  # ray: resources each run asks for
    gpus_per_run: float = 0.0

    def validate(self, backend: str) -> BackendOptions:
        if self.retries < 0:
            raise DermkdError(f"--retries must be >= 0, not {self.retries}")
        if self.cpus_per_run <= 0:
            raise DermkdError(f"--cpus-per-run must be > 0, not {self.cpus_per_run}")
        if self.gpus_per_run < 0:
            raise DermkdError(f"--gpus-per-run must be >= 0, not {self.gpus_per_run}")
        ray_only = self.address is not None or self.cpus_per_run != 1.0 or self.gpus_per_run != 0.0
        if backend != "ray" and ray_only:
            raise DermkdError("--ray-address, --cpus-per-run and --gpus-per-run are for --backend ray")
        return self

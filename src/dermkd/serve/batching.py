"""Micro-batching: requests that arrive within `max_delay` seconds of each other share one
forward pass (at most `max_batch` images), as TorchServe and Triton batch. One worker
thread owns the model, so the backend never runs two batches at once."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np


class MicroBatcher:
    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int = 16, max_delay: float = 0.005) -> None:
        self.run, self.max_batch, self.max_delay = run, max_batch, max_delay
        self.requests: queue.Queue[tuple[np.ndarray, Future] | None] = queue.Queue()
        self.batch_sizes: list[int] = []  # images per forward pass, for the metrics
        self.worker = threading.Thread(target=self._loop, name="dermkd-batcher", daemon=True)
        self.worker.start()

    def submit(self, images: np.ndarray) -> Future:
        """(n, 3, S, S) float32 -> a future of the model's output for these n images."""
        done: Future = Future()
        self.requests.put((images, done))
        return done

    def close(self) -> None:
        self.requests.put(None)
        self.worker.join(timeout=10)

    def _loop(self) -> None:
        while (first := self.requests.get()) is not None:
            batch, deadline = [first], time.monotonic() + self.max_delay
            while sum(len(x) for x, _ in batch) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                try:
                    item = self.requests.get(timeout=left)
                except queue.Empty:
                    break
                if item is None:
                    self.requests.put(None)  # finish this batch, then stop
                    break
                batch.append(item)
            self._run(batch)

    def _run(self, batch: list[tuple[np.ndarray, Future]]) -> None:
        try:
            out = self.run(np.concatenate([x for x, _ in batch]))
        except Exception as exc:  # every waiting request learns why; the worker goes on
            for _, done in batch:
                done.set_exception(exc)
            return
        self.batch_sizes.append(sum(len(x) for x, _ in batch))
        start = 0
        for x, done in batch:
            done.set_result(out[start:start + len(x)])
            start += len(x)

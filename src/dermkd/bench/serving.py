"""The service under a bounded load: `dermkd serve` on 127.0.0.1, a fixed number of
one-image POST /v1/predict requests from a few concurrent clients, beside the same
predictor (`serve.predict.open_model`, ONNX Runtime, the same threads) called in-process
on the same images in batches of the service's micro-batch size.

Figures per model (the student, and the teacher), for requests of 1 and of 8 images:
served images/s and p50/p99 request latency with the error count (target 0); in-process
images/s; their ratio (target >= 0.5); the served probabilities against the in-process
reference (parity);
and where the difference goes, per image: decoding the upload (`decode_bytes`, timed
in-process), the forward pass (in-process, per image), and the rest (HTTP, multipart
parsing, JSON, the micro-batching wait; the mean micro-batch comes from /metrics). Loopback only; the
request count and every wait are bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dermkd.bench.common import BENCHMARKS, BenchContext, Figure, check
from dermkd.data.images import decode_bytes
from dermkd.errors import DermkdError
from dermkd.export import export_model
from dermkd.export.source import Source
from dermkd.models import create_model

BENCH = "serving"
CLIENTS = 4  # concurrent clients: each sends its next request when the last is answered
MAX_BATCH = 8
PER_REQUEST = (1, 8)  # images per request: single uploads, and a client that batches
SMOKE_SIZE = 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jpegs(images: np.ndarray) -> list[bytes]:
    """(N, 3, S, S) uint8 -> JPEG files (quality 95), what a client uploads."""
    out = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0))).save(buf, format="JPEG", quality=95)
        out.append(buf.getvalue())
    return out


class Server:
    """`dermkd serve MODEL` in a child process, ready once /readyz answers 200."""

    def __init__(self, model: Path, threads: int, log: Path) -> None:
        import httpx

        self.base = f"http://127.0.0.1:{_free_port()}"
        cmd = [str(Path(sys.executable).with_name("dermkd")), "serve", str(model), "--port", self.base.rsplit(":", 1)[1],
               "--threads", str(threads), "--max-batch", str(MAX_BATCH), "--max-concurrent", str(2 * CLIENTS)]
        with log.open("w") as sink:
            self.proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DermkdError(f"dermkd serve exited ({log.read_text()[-300:]})")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    card = httpx.get(f"{self.base}/v1/model", timeout=10).json()
                    self.classes = tuple(c["name"] for c in card["classes"])
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.close()
        raise DermkdError(f"dermkd serve was not ready within 180 s (see {log})")

    def batches(self, since: tuple[float, float] | None = None) -> Any:
        """(images, forward passes) so far (dermkd_batch_images in /metrics); with `since`,
        the mean images per forward pass after it."""
        import httpx

        values = dict(line.split() for line in httpx.get(f"{self.base}/metrics", timeout=10).text.splitlines()
                      if line.startswith("dermkd_batch_images_"))
        now = float(values["dermkd_batch_images_sum"]), float(values["dermkd_batch_images_count"])
        return now if since is None else (now[0] - since[0]) / max(now[1] - since[1], 1.0)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Load:
    wall: float  # seconds for all requests
    latencies: list[float]  # seconds per request
    errors: int  # answers other than 200, and transport errors
    answers: dict[int, list[float]]  # body index -> served probabilities (class order), first answer each


async def _load(base: str, bodies: list[bytes], requests: int, per_request: int, classes: tuple[str, ...]) -> Load:
    """`requests` POSTs of `per_request` images each from CLIENTS concurrent clients."""
    import httpx

    latencies: list[float] = []
    answers: dict[int, list[float]] = {}
    errors = 0
    queue = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in queue:
            start = time.perf_counter()
            which = [(i * per_request + j) % len(bodies) for j in range(per_request)]
            files = [("files", (f"img{k}.jpg", bodies[k], "image/jpeg")) for k in which]
            try:
                answer = await http.post(f"{base}/v1/predict", files=files)
            except httpx.HTTPError:
                answer = None
            latencies.append(time.perf_counter() - start)
            if answer is None or answer.status_code != 200:
                errors += 1
            else:
                for k, p in zip(which, answer.json()["predictions"]):
                    answers.setdefault(k, [p["probabilities"][c] for c in classes])

    async with httpx.AsyncClient(timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        return Load(time.perf_counter() - started, latencies, errors, answers)


def _parity(model: Path, threads: int, bodies: list[bytes], answers: dict[int, list[float]]) -> tuple[float, float, str]:
    """(max |served - reference| probability, % same top-1, reference) on the decoded
    uploads; the reference is eager PyTorch for a run (with its temperature), else the
    exported file's own runtime in-process."""
    from dermkd.serve.predict import open_model, softmax

    reference = open_model(model, threads)
    size = reference.image_size
    idx = sorted(answers)
    x = np.stack([decode_bytes(bodies[i], size).pixels for i in idx]).transpose(0, 3, 1, 2).astype(np.float32) / 255
    expected = softmax(reference(x))
    served = np.array([answers[i] for i in idx])
    same = 100 * float((served.argmax(1) == expected.argmax(1)).mean())
    return float(np.abs(served - expected).max()), same, f"in-process {reference.backend}"


def _in_process(model: Path, threads: int, images: np.ndarray, reps: int) -> float:
    """Images/s of the service's own predictor on float batches of MAX_BATCH (median of reps)."""
    from dermkd.serve.predict import open_model

    predictor = open_model(model, threads, onnx=True)
    x = images.astype(np.float32) / 255.0
    times = []
    for _ in range(reps + 1):  # the first pass warms up
        start = time.perf_counter()
        for i in range(0, len(x), MAX_BATCH):
            predictor(x[i:i + MAX_BATCH])
        times.append(time.perf_counter() - start)
    return len(x) / float(np.median(times[1:]))


def _models(ctx: BenchContext) -> dict[str, tuple[Path, np.ndarray]]:
    """label -> (what to serve, the test images clients upload): trained runs where given
    (their own test split); else random-weight DSC and ResNet-50 exported to ONNX."""
    from dermkd.evaluate.rundata import run_data

    n = ctx.steps(64, smoke=8)
    out = {}
    pairs = (("student", ctx.student_run, "dsc"), ("teacher", ctx.teacher_run, "resnet50"))
    for label, run, name in pairs[:1] if ctx.smoke else pairs:  # smoke: the path once, not the figures
        if run is not None:
            out[label] = Path(run), run_data(Path(run)).images["test"][:n].numpy()
            continue
        data = ctx.data if not ctx.smoke else dataclasses.replace(ctx, image_size=SMOKE_SIZE).data
        model = create_model(name, len(data.classes), image_size=data.image_size)
        source = Source.from_model(model, data.classes, data.image_size, train_images=lambda: data.images["train"])
        path = export_model(source, "onnx", ctx.work_dir / "serving" / f"{name}.onnx")
        out[label] = path, data.images["test"][:n].numpy()
    return out


def measure(label: str, model: Path, ctx: BenchContext, images: np.ndarray) -> list[Figure]:
    """One server for the model; a load of single-image requests, then of batched ones."""
    bodies = _jpegs(images)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    server = Server(model, ctx.threads, ctx.work_dir / f"serve-{label}.log")
    loads = {}
    try:
        for per_request in PER_REQUEST:
            requests = ctx.steps(400 // per_request, smoke=4)
            before = server.batches()
            loads[per_request] = (requests, asyncio.run(_load(server.base, bodies, requests, per_request,
                                                              server.classes)), server.batches(before))
    finally:
        server.close()
    local = _in_process(model, ctx.threads, images, reps=ctx.steps(3, smoke=1))
    started = time.perf_counter()
    for b in bodies:
        decode_bytes(b, images.shape[-1])
    decode = (time.perf_counter() - started) / len(bodies)
    answers = {k: v for _, load, _ in loads.values() for k, v in load.answers.items()}
    gap, same, parity_ref = _parity(model, ctx.threads, bodies, answers)
    row = f"served {label}"
    figures = [
        Figure(BENCH, f"{label}: in-process img/s (same predictor, batch {MAX_BATCH})", local, "img/s",
               "served, same run", cell=(f"{row}, in-process", "img/s")),
        Figure(BENCH, f"{label}: served probabilities, max abs difference", gap, "", parity_ref,
               cell=(f"{row}, in-process", "max |p - p_ref|")),
        Figure(BENCH, f"{label}: served top-1 same as in-process", same, "%", parity_ref,
               cell=(f"{row}, in-process", "same top-1 %")),
        Figure(BENCH, f"{label}: per image, decode", 1000 * decode, "ms", "decode_bytes in-process",
               cell=(f"{row}, in-process", "decode ms/img")),
    ]
    for per_request, (requests, load, batch) in loads.items():
        figures += _load_figures(f"{row}, {per_request} img/request", requests * per_request / load.wall, local,
                                 decode, load, batch, f"{requests} requests of {per_request} image(s) from {CLIENTS} "
                                                      f"clients, {images.shape[-1]} px JPEGs")
    return figures


def _load_figures(row: str, served: float, local: float, decode: float, load: Load, batch: float,
                  sent: str) -> list[Figure]:
    rest = max(1 / served - decode - 1 / local, 0.0)
    p50, p99 = (1000 * float(np.percentile(load.latencies, q)) for q in (50, 99))
    ratio = served / local
    target, met = check(ratio, ">=", 0.5)
    where = (f"per served image {1000 / served:.2f} ms: decode {1000 * decode:.2f}, forward {1000 / local:.2f}, "
             f"HTTP + batching wait {1000 * rest:.2f} (mean micro-batch {batch:.1f} images)")
    return [
        Figure(BENCH, f"{row}: served img/s", served, "img/s", "in-process, same run", cell=(row, "img/s"),
               note=f"{sent}; {where}"),
        Figure(BENCH, f"{row}: served / in-process", ratio, "x", "in-process, same run", target, met,
               cell=(row, "served / in-process")),
        Figure(BENCH, f"{row}: request latency p50", p50, "ms", sent, cell=(row, "p50 ms")),
        Figure(BENCH, f"{row}: request latency p99", p99, "ms", sent, cell=(row, "p99 ms")),
        Figure(BENCH, f"{row}: errors (non-200 answers)", load.errors, "requests", sent, "0", load.errors == 0,
               cell=(row, "errors")),
        Figure(BENCH, f"{row}: per served image, HTTP + batching wait", 1000 * rest, "ms",
               "served time per image - decode - forward", cell=(row, "HTTP + batching ms/img")),
        Figure(BENCH, f"{row}: mean micro-batch", batch, "images", "per forward pass, from /metrics",
               cell=(row, "micro-batch")),
    ]


@BENCHMARKS.register(BENCH)
def serving(ctx: BenchContext) -> list[Figure]:
    """Student and teacher, each served alone (one at a time: they share the 2 cores)."""
    return [f for label, (model, images) in _models(ctx).items() for f in measure(label, model, ctx, images)]

"""The service under a bounded load: `dermkd serve` on 127.0.0.1, a fixed number of
one-image POST /v1/predict requests from a few concurrent clients, beside the same
predictor (`serve.predict.open_model`, ONNX Runtime, the same threads) called in-process
on the same images in batches of the service's micro-batch size.

Figures per model (the student, and the teacher): served images/s and p50/p99 request
latency with the error count (target 0); in-process images/s; their ratio (target >= 0.5);
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
from pathlib import Path

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
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.close()
        raise DermkdError(f"dermkd serve was not ready within 180 s (see {log})")

    def mean_batch(self) -> float:
        """Images per forward pass so far (dermkd_batch_images in /metrics)."""
        import httpx

        values = dict(line.split() for line in httpx.get(f"{self.base}/metrics", timeout=10).text.splitlines()
                      if line.startswith("dermkd_batch_images_"))
        return float(values["dermkd_batch_images_sum"]) / max(float(values["dermkd_batch_images_count"]), 1.0)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _load(base: str, bodies: list[bytes], requests: int) -> tuple[float, list[float], int]:
    """(wall seconds, per-request seconds, errors) for `requests` one-image POSTs."""
    import httpx

    latencies: list[float] = []
    errors = 0
    queue = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in queue:
            start = time.perf_counter()
            files = {"files": (f"img{i}.jpg", bodies[i % len(bodies)], "image/jpeg")}
            try:
                ok = (await http.post(f"{base}/v1/predict", files=files)).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += not ok

    async with httpx.AsyncClient(timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        return time.perf_counter() - started, latencies, errors


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
    requests = ctx.steps(400, smoke=12)
    bodies = _jpegs(images)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    server = Server(model, ctx.threads, ctx.work_dir / f"serve-{label}.log")
    try:
        wall, latencies, errors = asyncio.run(_load(server.base, bodies, requests))
        batch = server.mean_batch()
    finally:
        server.close()
    local = _in_process(model, ctx.threads, images, reps=ctx.steps(3, smoke=1))
    size = images.shape[-1]
    started = time.perf_counter()
    for b in bodies:
        decode_bytes(b, size)
    decode = (time.perf_counter() - started) / len(bodies)
    served = requests / wall
    forward = 1 / local
    rest = max(1 / served - decode - forward, 0.0)
    p50, p99 = (1000 * float(np.percentile(latencies, q)) for q in (50, 99))
    ratio = served / local
    target, met = check(ratio, ">=", 0.5)
    clean = errors == 0
    load = f"{requests} requests from {CLIENTS} clients"
    where = (f"{requests} requests, {CLIENTS} clients, one {size} px JPEG each; per served image {1000 / served:.2f} ms: "
             f"decode {1000 * decode:.2f}, forward {1000 * forward:.2f}, HTTP + batching wait {1000 * rest:.2f} "
             f"(mean micro-batch {batch:.1f} images)")
    row = f"served {label}"
    return [
        Figure(BENCH, f"{label}: served img/s", served, "img/s", "in-process, same run", cell=(row, "served img/s"),
               note=where),
        Figure(BENCH, f"{label}: in-process img/s (same predictor, batch {MAX_BATCH})", local, "img/s",
               "served, same run", cell=(row, "in-process img/s")),
        Figure(BENCH, f"{label}: served / in-process", ratio, "x", "in-process, same run", target, met,
               cell=(row, "served / in-process")),
        Figure(BENCH, f"{label}: request latency p50", p50, "ms", load, cell=(row, "p50 ms")),
        Figure(BENCH, f"{label}: request latency p99", p99, "ms", load, cell=(row, "p99 ms")),
        Figure(BENCH, f"{label}: errors (non-200 answers)", errors, "requests", load, "0", clean,
               cell=(row, "errors")),
        Figure(BENCH, f"{label}: per served image, HTTP + batching wait", 1000 * rest, "ms",
               "served time per image - decode - forward", cell=(row, "HTTP + batching ms/img")),
        Figure(BENCH, f"{label}: per served image, decode", 1000 * decode, "ms", "decode_bytes in-process",
               cell=(row, "decode ms/img")),
    ]


@BENCHMARKS.register(BENCH)
def serving(ctx: BenchContext) -> list[Figure]:
    """Student and teacher, each served alone (one at a time: they share the 2 cores)."""
    return [f for label, (model, images) in _models(ctx).items() for f in measure(label, model, ctx, images)]

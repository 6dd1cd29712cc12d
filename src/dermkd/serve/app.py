"""`dermkd serve`: a FastAPI service around one model (pip install 'dermkd[serve]').

Endpoints: POST /v1/predict (multipart images -> calibrated probabilities, top-k, the
malignant probability, model version and timing), POST /v1/explain (one image -> a
Grad-CAM PNG, the model beside the teacher it was distilled from), GET /v1/model (the model card),
/healthz (alive), /readyz (loaded and warmed), /metrics (Prometheus text format), /docs
(OpenAPI), and / (a small offline page). Inference runs in a worker thread, off the event
loop; requests arriving together share a forward pass (`serve.batching`, at most
`max_batch` images, waiting at most `max_delay` s); at most `max_concurrent` requests are
in flight and the next gets a 503. Bad input
(not an image, truncated, empty, wrong content type, too large, absurd dimensions) is a
4xx with a JSON error and never stops the service.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at
# run time, and `fastapi` is imported inside create_app (it is an optional extra).
import contextlib
import hashlib
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dermkd.data.images import decode_bytes
from dermkd.data.taxonomy import is_malignant
from dermkd.errors import DermkdError
from dermkd.io import read_json
from dermkd.rundir import RunDir
from dermkd.serve.batching import MicroBatcher
from dermkd.serve.page import PAGE
from dermkd.serve.predict import softmax, open_model

MAX_UPLOAD = 10 * 2**20  # bytes per image
IMAGE_TYPES = ("image/", "application/octet-stream")


def _fastapi():
    try:
        import fastapi
    except ImportError:
        raise DermkdError("the service needs fastapi and uvicorn: pip install 'dermkd[serve]'") from None
    return fastapi


class Metrics:
    """Request counts and inference time, in the Prometheus text format."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.inference_seconds = 0.0
        self.inferences = 0
        self.lock = threading.Lock()

    def count(self, endpoint: str, status: int) -> None:
        with self.lock:
            self.requests[(endpoint, status)] += 1

    def text(self) -> str:
        lines = ["# TYPE dermkd_requests_total counter"]
        lines += [f'dermkd_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                  for (e, s), n in sorted(self.requests.items())]
        lines += ["# TYPE dermkd_inference_seconds summary",
                  f"dermkd_inference_seconds_sum {self.inference_seconds:.6f}",
                  f"dermkd_inference_seconds_count {self.inferences}"]
        return "\n".join(lines) + "\n"


def model_card(model: Path, classes: tuple[str, ...], image_size: int) -> dict[str, Any]:
    """The run's model card when it has one, else what the model file itself declares."""
    rd = RunDir(model)
    if model.is_dir() and rd.model_card.is_file():
        return read_json(rd.model_card)
    return {"model": model.name, "classes": [{"index": i, "name": c, "malignant": is_malignant(c)}
                                             for i, c in enumerate(classes)],
            "input": {"shape": [None, 3, image_size, image_size]},
            "intended_use": "Research use only: not a medical device."}


class Service:
    """One loaded model and what the endpoints share: its card and version, the bounded
    inference slots, the metrics, and readiness."""

    def __init__(self, model: Path, threads: int, max_upload: int, max_concurrent: int, top_k: int,
                 max_batch: int = 16, max_delay: float = 0.005, backend: str = "onnx") -> None:
        self.predictor = open_model(model, threads, onnx=backend == "onnx")
        self.batcher = MicroBatcher(self.predictor, max_batch, max_delay)
        self.card = model_card(model, self.predictor.classes, self.predictor.image_size)
        self.version = hashlib.sha256(json.dumps(self.card, sort_keys=True).encode()).hexdigest()[:16]
        self.malignant = np.array([is_malignant(c) for c in self.predictor.classes])
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.metrics, self.ready = Metrics(), False
        self.max_upload, self.top_k = max_upload, top_k
        self.source = model if model.is_dir() or model.suffix == ".ckpt" else None  # what Grad-CAM can open
        self.explained: list[Any] | None = None  # loaded on the first /v1/explain

    def warm(self) -> None:
        size = self.predictor.image_size
        self.predictor(np.zeros((1, 3, size, size), dtype=np.float32))
        self.ready = True

    async def read_images(self, files: list[Any]) -> tuple[int, str] | list[np.ndarray]:
        """The uploads decoded, or (status, message) for the first bad one."""
        images = []
        for f in files:
            if not (f.content_type or "").startswith(IMAGE_TYPES):
                return 415, f"{f.filename}: content type {f.content_type!r} is not an image"
            data = await f.read(self.max_upload + 1)
            if len(data) > self.max_upload:
                return 413, f"{f.filename}: over the limit of {self.max_upload} bytes"
            if not data:
                return 400, f"{f.filename}: empty file"
            decoded = decode_bytes(data, self.predictor.image_size)
            if decoded.error:
                return 400, f"{f.filename}: {decoded.error}"
            images.append(decoded.pixels)
        return images

    def overlay(self, pixels: np.ndarray) -> bytes:
        """The Grad-CAM figure of one decoded image (run directories and checkpoints only:
        an exported file has no layers to look into)."""
        from dermkd.serve.explain import explain_image, models_to_explain

        if self.source is None:
            raise DermkdError("explanations need a run directory or checkpoint, not an exported model file")
        if self.explained is None:
            self.explained = models_to_explain(self.source, [])
        with tempfile.TemporaryDirectory() as tmp:
            image = Path(tmp, "upload.png")
            Image.fromarray(pixels).save(image)
            return explain_image(self.explained, image, Path(tmp, "overlay.png")).read_bytes()

    def infer(self, images: list[np.ndarray], names: list[str | None]) -> dict[str, Any]:
        """Runs in a worker thread; the caller holds a slot."""
        started = time.perf_counter()
        x = np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        probs = softmax(self.batcher.submit(x).result())
        seconds = time.perf_counter() - started
        with self.metrics.lock:
            self.metrics.inference_seconds += seconds
            self.metrics.inferences += 1
        return {"model": {"version": self.version, "backend": self.predictor.backend},
                "timing_ms": round(1000 * seconds, 2),
                "predictions": [_answer(n, p, self.predictor.classes, self.malignant, self.top_k)
                                for n, p in zip(names, probs)]}


def create_app(model: Path, *, threads: int = 1, max_upload: int = MAX_UPLOAD, max_concurrent: int = 4,
               top_k: int = 3, max_batch: int = 16, max_delay: float = 0.005, backend: str = "onnx") -> Any:
    """The service; a run directory or checkpoint is served on ONNX Runtime (`backend`
    "onnx", its export made once) or on PyTorch ("eager"); an exported file on its own runtime."""
    fastapi = _fastapi()
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response

    service = Service(model, threads, max_upload, max_concurrent, top_k, max_batch, max_delay, backend)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        service.warm()
        yield
        service.batcher.close()

    app = fastapi.FastAPI(title="dermkd", version=service.version, lifespan=lifespan,
                          description="Skin-lesion classifier. Research use only: not a medical device.")
    app.state.service = service

    def refuse(images: tuple[int, str] | list, endpoint: str) -> Any:
        """A JSON error for a bad upload, or a 503 past capacity; None once a slot is held."""
        if not isinstance(images, tuple) and service.slots.acquire(blocking=False):
            return None
        status, message = images if isinstance(images, tuple) else (503, "at capacity: try again shortly")
        service.metrics.count(endpoint, status)
        return JSONResponse({"error": message}, status_code=status)

    @app.post("/v1/predict")
    async def predict(files: list[fastapi.UploadFile] = fastapi.File(...)) -> Any:
        images = await service.read_images(files)
        if (refused := refuse(images, "predict")) is not None:
            return refused
        try:
            body = await run_in_threadpool(service.infer, images, [f.filename for f in files])
        finally:
            service.slots.release()
        service.metrics.count("predict", 200)
        return body

    @app.post("/v1/explain")
    async def explain(file: fastapi.UploadFile = fastapi.File(...)) -> Any:
        images = await service.read_images([file])
        if (refused := refuse(images, "explain")) is not None:
            return refused
        try:
            png = await run_in_threadpool(service.overlay, images[0])
        except DermkdError as exc:
            service.metrics.count("explain", 400)
            return JSONResponse({"error": str(exc)}, status_code=400)
        finally:
            service.slots.release()
        service.metrics.count("explain", 200)
        return Response(png, media_type="image/png")

    @app.exception_handler(fastapi.exceptions.RequestValidationError)
    async def malformed(request: Any, exc: Any) -> Any:  # e.g. no `files` part: the same JSON shape as the rest
        service.metrics.count(request.url.path.rsplit("/", 1)[-1] or "root", 422)
        return JSONResponse({"error": "malformed request: send the image(s) as multipart form field "
                                      "'files' (/v1/explain: 'file')",
                             "detail": [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                                        for e in exc.errors()]}, status_code=422)

    _add_read_routes(app, service)
    return app


def _add_read_routes(app: Any, service: Service) -> None:
    """The endpoints that only read: the card, health, readiness, metrics and the page."""
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

    @app.get("/v1/model")
    def describe() -> Any:
        service.metrics.count("model", 200)
        return service.card

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz() -> Any:
        return {"status": "ready"} if service.ready else JSONResponse({"status": "loading"}, status_code=503)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> str:
        sizes = service.batcher.batch_sizes
        return service.metrics.text() + (f"# TYPE dermkd_batch_images summary\ndermkd_batch_images_sum {sum(sizes)}\n"
                                         f"dermkd_batch_images_count {len(sizes)}\n")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE


def _answer(name: str | None, p: np.ndarray, classes: tuple[str, ...], malignant: np.ndarray, k: int) -> dict:
    order = np.argsort(-p)[:k]
    return {"filename": name, "probabilities": {c: round(float(v), 6) for c, v in zip(classes, p)},
            "top_k": [{"class": classes[i], "probability": round(float(p[i]), 6)} for i in order],
            "malignant_probability": round(float(p[malignant].sum()), 6)}

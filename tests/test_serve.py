"""The service through a real uvicorn on 127.0.0.1 and an HTTP client: predictions, the
model card, health, readiness, metrics, the page, and every bad input a 4xx with a JSON
error after which the next request still works."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

def png(size=(40, 40), mode="RGB", seed=0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_predict_returns_probabilities_top_k_and_malignancy(server):
    base, run = server
    r = httpx.post(f"{base}/v1/predict", files=[("files", ("a.png", png(seed=1), "image/png")),
                                                 ("files", ("b.png", png(seed=2), "image/png"))])
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["predictions"]) == 2 and body["model"]["version"] and body["timing_ms"] >= 0
    assert body["model"]["backend"] == "onnx"  # a run is served on ONNX Runtime, exported once into RUN/export
    assert (run / "export" / "m.serve.onnx").is_file()
    p = body["predictions"][0]
    assert p["filename"] == "a.png" and sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert [t["probability"] for t in p["top_k"]] == sorted((v for v in p["probabilities"].values()), reverse=True)[:3]
    malignant = ("actinic keratosis", "basal cell carcinoma", "melanoma", "squamous cell carcinoma")
    assert p["malignant_probability"] == pytest.approx(sum(p["probabilities"][c] for c in malignant), abs=1e-4)


def bomb() -> bytes:
    """A decompression bomb: 12000 x 12000 px (1 bit) in about 17 kB of PNG."""
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name, data, ctype, status, fragment", [
    ("x.txt", b"hello", "text/plain", 415, "is not an image"),
    ("x.png", b"not an image at all", "image/png", 400, "not a readable image"),
    ("x.jpg", png()[:60], "image/jpeg", 400, "not a readable image"),  # truncated
    ("x.png", b"", "image/png", 400, "empty file"),
    ("x.png", png(size=(200, 200)), "image/png", 413, "over the limit"),  # > 0.05 MiB
    ("bomb.png", bomb(), "image/png", 400, "over the limit of"),  # 144 Mpx in 17 kB: refused before decoding
])
def test_bad_input_is_a_4xx_with_a_json_error_and_the_service_goes_on(server, name, data, ctype, status, fragment):
    base, _ = server
    r = httpx.post(f"{base}/v1/predict", files=[("files", (name, data, ctype))])
    assert r.status_code == status and fragment in r.json()["error"] and "Traceback" not in r.text
    assert httpx.post(f"{base}/v1/predict", files=[("files", ("ok.png", png(), "image/png"))]).status_code == 200


def test_a_request_without_a_file_is_a_422_with_a_json_error(server):
    base, _ = server
    for r in (httpx.post(f"{base}/v1/predict"), httpx.post(f"{base}/v1/predict", data={"files": "text"})):
        assert r.status_code == 422 and "multipart form field 'files'" in r.json()["error"] and "Traceback" not in r.text
    assert httpx.post(f"{base}/v1/predict", files=[("files", ("ok.png", png(), "image/png"))]).status_code == 200


@pytest.mark.parametrize("mode", ["L", "P", "I;16", "RGBA"])
def test_greyscale_palette_16_bit_and_alpha_images_are_converted(server, mode):
    base, _ = server
    if mode == "I;16":
        buf = io.BytesIO()
        Image.fromarray((np.arange(1600).reshape(40, 40) * 40).astype(np.uint16)).save(buf, format="PNG")
        data = buf.getvalue()
    else:
        data = png(mode=mode)
    r = httpx.post(f"{base}/v1/predict", files=[("files", ("m.png", data, "image/png"))])
    assert r.status_code == 200, r.text


def test_model_card_health_readiness_metrics_docs_and_page(server):
    base, run = server
    assert httpx.get(f"{base}/healthz").json() == {"status": "alive"}
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
    card = httpx.get(f"{base}/v1/model").json()
    assert len(card["classes"]) == 9 and "not a medical device" in card["intended_use"]
    metrics = httpx.get(f"{base}/metrics").text
    assert 'dermkd_requests_total{endpoint="predict",status="200"}' in metrics
    assert "dermkd_inference_seconds_count" in metrics
    assert httpx.get(f"{base}/openapi.json").json()["paths"].keys() >= {"/v1/predict", "/v1/model"}
    page = httpx.get(f"{base}/").text
    assert "Research use only" in page and "/v1/predict" in page
    assert "http://" not in page and "https://" not in page  # no external assets: works offline


def test_past_capacity_is_a_503_and_the_slot_comes_back(server):
    from fastapi.testclient import TestClient

    from dermkd.serve.app import create_app

    _, run = server
    app = create_app(run, max_concurrent=1)
    with TestClient(app) as client:
        upload = [("files", ("a.png", png(), "image/png"))]
        app.state.service.slots.acquire()  # one request is inferring
        r = client.post("/v1/predict", files=upload)
        assert r.status_code == 503 and r.json() == {"error": "at capacity: try again shortly"}
        app.state.service.slots.release()
        assert client.post("/v1/predict", files=upload).status_code == 200


def test_explain_returns_a_png_overlay(server):
    pytest.importorskip("pytorch_grad_cam")
    base, _ = server
    r = httpx.post(f"{base}/v1/explain", files=[("file", ("a.png", png(seed=3), "image/png"))], timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size[0] > 100
    bad = httpx.post(f"{base}/v1/explain", files=[("file", ("a.txt", b"x", "text/plain"))])
    assert bad.status_code == 415 and "is not an image" in bad.json()["error"]


def test_micro_batching_shares_forward_passes_and_keeps_each_answer():
    import concurrent.futures as cf

    from dermkd.serve.batching import MicroBatcher

    calls = []

    def model(x):
        calls.append(len(x))
        return x.reshape(len(x), -1).sum(1, keepdims=True) * np.ones((1, 2))

    batcher = MicroBatcher(model, max_batch=8, max_delay=0.05)
    inputs = [np.full((1, 3, 2, 2), float(i), dtype=np.float32) for i in range(12)]
    with cf.ThreadPoolExecutor(12) as pool:
        outs = list(pool.map(lambda x: batcher.submit(x).result(timeout=10), inputs))
    batcher.close()
    assert [float(o[0, 0]) for o in outs] == [12.0 * i for i in range(12)]  # each caller gets its own rows
    assert sum(calls) == 12 and len(calls) < 12 and max(calls) <= 8  # shared, and never over max_batch

    failing = MicroBatcher(lambda x: 1 / 0, max_batch=4, max_delay=0.0)
    with pytest.raises(ZeroDivisionError):
        failing.submit(inputs[0]).result(timeout=10)
    assert failing.worker.is_alive()  # the error reached the caller; the worker goes on
    failing.close()


def test_the_eager_backend_gives_the_same_probabilities(server):
    from fastapi.testclient import TestClient

    from dermkd.serve.app import create_app

    base, run = server
    upload = [("files", ("a.png", png(seed=7), "image/png"))]
    served = httpx.post(f"{base}/v1/predict", files=upload).json()["predictions"][0]["probabilities"]
    with TestClient(create_app(run, backend="eager")) as client:
        body = client.post("/v1/predict", files=upload).json()
    assert body["model"]["backend"] == "eager"
    eager = body["predictions"][0]["probabilities"]
    assert max(abs(served[c] - eager[c]) for c in eager) < 1e-4

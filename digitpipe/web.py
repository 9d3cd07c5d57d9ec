"""Draw-a-digit web page: a canvas, the prediction, a bar per class and the 28x28 image the model saw.

    python -m digitpipe.web                    # http://127.0.0.1:8000, the pipeline's model
    python -m digitpipe.web --port 9000 --model models/model_int8.tflite
    python -m digitpipe.web --host 0.0.0.0     # reachable from other machines (e.g. your phone)

A small ASGI app (FastAPI, served by uvicorn): one self-contained HTML page (no script, font or
style from the internet) and one JSON endpoint that takes image bytes. Drawn digits and uploaded
files go through the same preprocessing as training and ``predict``.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image, UnidentifiedImageError

from digitpipe.errors import DigitpipeError
from digitpipe.images import ImageTooLarge, open_image, to_model_input

MAX_BODY = 5 * 2**20       # bytes: a drawing is ~10 KB, a phone photo a few MB
MAX_PIXELS = 25_000_000    # width x height, checked from the header before decoding
DEFAULT_MODEL = Path("models/model.keras")


def input_png(x: np.ndarray) -> str:
    """The 28x28 model input as a base64 PNG (white digit on black, as the model sees it)."""
    buf = io.BytesIO()
    Image.fromarray((x * 255).round().astype(np.uint8), mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def classify(data: bytes, predictor, classes: list[str]) -> dict:
    """Decode, preprocess and classify image bytes; raises ``ValueError`` with a user-facing message."""
    if not data:
        raise ValueError("The upload is empty.")
    try:
        image = open_image(data, max_pixels=MAX_PIXELS)
    except (ImageTooLarge, Image.DecompressionBombError) as err:  # Pillow's own limit, far above ours
        raise ValueError(f"That image is too large ({err}).") from None
    except UnidentifiedImageError:
        raise ValueError("That file is not an image the page can read (use PNG, JPG, BMP or GIF).") from None
    except (OSError, SyntaxError, EOFError) as err:
        raise ValueError(f"That image is damaged: {err}") from None
    x = to_model_input(image)
    if not x.any():
        return {"empty": True, "input": input_png(x)}
    probs = predictor.probabilities(x)[0]
    best = int(probs.argmax())
    return {"empty": False, "label": classes[best], "confidence": float(probs[best]),
            "probabilities": [{"label": c, "p": float(p)} for c, p in zip(classes, probs, strict=True)],
            "input": input_png(x)}


def create_app(model_path: Path = DEFAULT_MODEL, classes: list[str] | None = None):
    """The ASGI app. A missing or broken model is reported by the page and the API, not by a crash."""
    from digitpipe.inference import Predictor

    app = FastAPI(title="digitpipe", docs_url=None, redoc_url=None, openapi_url=None)
    try:
        predictor, problem = Predictor.load(model_path), None
    except DigitpipeError as err:
        predictor, problem = None, str(err)
    names = classes or [str(i) for i in range(predictor.num_classes if predictor else 10)]
    page = resources.files("digitpipe").joinpath("web.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/api/status")
    def status() -> dict:
        return {"ready": predictor is not None, "problem": problem, "model": str(model_path), "classes": names}

    @app.post("/api/predict")
    async def predict(request: Request) -> JSONResponse:
        if predictor is None:
            return JSONResponse({"error": problem}, status_code=503)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY:
            return JSONResponse({"error": f"The upload is larger than {MAX_BODY // 2**20} MB."}, status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return JSONResponse({"error": f"The upload is larger than {MAX_BODY // 2**20} MB."},
                                    status_code=413)
        try:
            return JSONResponse(classify(bytes(body), predictor, names))
        except ValueError as err:
            return JSONResponse({"error": str(err)}, status_code=400)

    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m digitpipe.web", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"default: {DEFAULT_MODEL}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import uvicorn

    from digitpipe.runtime import load_keras

    load_keras()
    app = create_app(args.model)
    if not args.model.exists():
        print(f"warning: model {args.model} not found: run `dvc repro` first; the page will say so too",
              file=sys.stderr)
    print(f"digitpipe: draw a digit at http://{args.host}:{args.port}/  (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

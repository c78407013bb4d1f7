#!/usr/bin/env python3
"""An exported model (`cargo xtask export --pytorch DIR`) served by PyTorch as a user would write
it: FastAPI + uvicorn around the export's own `caption.py`, one image per forward pass
(`caption_image`), the image as the raw body of `POST /v1/captions`. The answer has the shape
`cargo xtask serve` gives, for the same load generator
(`cargo run -p caption-serve --example load`).

Usage: python fastapi_server.py EXPORT_DIR [--port 8090] [--threads 2]
Prints "ready after N ms" once the model is loaded and has captioned a warm-up image.
"""

import argparse
import importlib.util
import io
import sys
import time

import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from PIL import Image

STARTED = time.perf_counter()


def load_export(folder):
    spec = importlib.util.spec_from_file_location("exported_caption", f"{folder}/caption.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, vocabulary, config = module.load(folder)
    return module, model, vocabulary, config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    module, model, vocabulary, config = load_export(args.export)
    preprocess = module.transform(config)

    def caption(image):
        batch = preprocess(image.convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            words = model.caption_image(batch, vocabulary, max_length=config["max_length"])
        return [w for w in words if w not in ("<PAD>", "<SOS>", "<EOS>")]

    caption(Image.new("RGB", (64, 64), (128, 128, 128)))
    app = FastAPI()

    @app.post("/v1/captions")
    async def captions(request: Request):
        body = await request.body()
        try:
            image = Image.open(io.BytesIO(body))
            image.load()
        except Exception as error:  # noqa: BLE001 - any unreadable image is the client's error
            raise HTTPException(status_code=422, detail=str(error)) from error
        started = time.perf_counter()
        # Run the model off the event loop, as FastAPI does for a plain `def` endpoint.
        from starlette.concurrency import run_in_threadpool

        tokens = await run_in_threadpool(caption, image)
        return {
            "images": [{"captions": [{"caption": " ".join(tokens), "tokens": tokens}]}],
            "timing": {"total_ms": (time.perf_counter() - started) * 1e3},
        }

    @app.get("/readyz")
    def ready():
        return {"status": "ready"}

    print(f"ready after {(time.perf_counter() - STARTED) * 1e3:.0f} ms", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    sys.exit(main())

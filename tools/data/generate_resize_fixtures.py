"""Fixtures for caption-data's Pillow-exact bilinear resize: random 8-bit RGB images (the worst
case for rounding) and Pillow's `Image.resize((w, h), Image.BILINEAR)` of each (what torchvision's
Resize runs on PIL images), upsampling, downsampling by more than 2 and both at once.

Run from the repository root with the pinned requirements (tools/requirements-torch.txt):
    tools/.venv/bin/python tools/data/generate_resize_fixtures.py
"""
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
# (input width, height) -> (output width, height)
CASES = [((128, 128), (139, 139)), ((250, 190), (107, 107)), ((61, 97), (150, 150)), ((200, 120), (160, 160))]

generator = np.random.default_rng(0)
tensors = {}
for (width, height), (out_width, out_height) in CASES:
    pixels = generator.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    resized = np.asarray(Image.fromarray(pixels, "RGB").resize((out_width, out_height), Image.BILINEAR))
    key = f"{width}x{height}->{out_width}x{out_height}"
    tensors[f"{key}/input"] = torch.from_numpy(pixels.copy())
    tensors[f"{key}/output"] = torch.from_numpy(resized.copy())
out = ROOT / "crates" / "caption-data" / "tests" / "fixtures" / "pillow_resize.safetensors"
save_file(tensors, str(out), metadata={"pillow": PIL.__version__})
print(f"wrote {out} ({len(CASES)} cases)")

"""Fixtures for caption-data's image transform: torchvision's eval transform of the original
(Resize((S, S)) on a PIL image -> ToTensor -> Normalize(0.5, 0.5)) on real Flickr8k photos.

Run from the repository root with the pinned requirements (tools/requirements-torch.txt):
    tools/.venv/bin/python tools/data/generate_transform_fixtures.py
"""
from pathlib import Path

import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT.parent / "shared" / "data" / "flickr8k" / "images"
NAMES = ["3637013_c675de7705.jpg", "102455176_5f8ead62d5.jpg", "10815824_2997e03d76.jpg"]
SIDES = [64, 99]

tensors = {}
for name in NAMES:
    image = Image.open(IMAGES / name).convert("RGB")
    for side in SIDES:
        transform = transforms.Compose(
            [transforms.Resize((side, side)), transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)]
        )
        tensors[f"{name}/{side}"] = transform(image).contiguous()
out = ROOT / "crates" / "caption-data" / "tests" / "fixtures" / "torchvision_eval_transform.safetensors"
save_file(tensors, str(out), metadata={"torch": torch.__version__, "torchvision": torchvision.__version__})
print(f"wrote {out} ({len(tensors)} tensors)")

#!/usr/bin/env python3
"""What `cargo xtask caption --checkpoint CHECKPOINT IMAGE...` does, in PyTorch: the original's
CNNtoRNN (tools/model/original.py) loaded with a checkpoint's model.safetensors (the original's
names; in frozen mode with the run's frozen weights file it names) and its tokenizer.json, then the original's inference loop for each image: PIL open, the
eval transform (Resize((S, S)), ToTensor, Normalize(0.5, 0.5); S from the checkpoint's config),
`model.caption_image`. Prints `path<TAB>caption` per image. One thread per core, as torch
chooses.

Usage: tools/.venv/bin/python tools/cli/caption_original.py CHECKPOINT_DIR IMAGE...
"""

import json
import sys
from pathlib import Path

import torch
import torchvision.transforms as transforms
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from original import CNNtoRNN  # noqa: E402


class Vocabulary:
    def __init__(self, tokenizer_json):
        vocab = json.loads(Path(tokenizer_json).read_text())["model"]["vocab"]
        self.itos = {i: w for w, i in vocab.items()}


def main():
    checkpoint, images = Path(sys.argv[1]), sys.argv[2:]
    config = json.loads((checkpoint / "trainer.json").read_text())["config"]
    vocabulary = Vocabulary(checkpoint / "tokenizer.json")
    state = load_file(str(checkpoint / "model.safetensors"))
    # A frozen-mode checkpoint names the run's file of the weights that never train.
    with safe_open(str(checkpoint / "model.safetensors"), "pt") as opened:
        frozen = (opened.metadata() or {}).get("caption.frozen_weights")
    if frozen:
        name = json.loads(frozen)["file"]
        shared = next(folder / name for folder in (checkpoint, checkpoint.parent, checkpoint.parent.parent)
                      if (folder / name).is_file())
        state.update(load_file(str(shared)))
    model = CNNtoRNN(config["embed_size"], config["hidden_size"], len(vocabulary.itos), config["num_layers"])
    model.encoderCNN.inception.transform_input = config["transform_input"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Only BatchNorm's counters are not in the file (nothing reads them in eval mode).
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    model.eval()
    size = config["image_size"]
    transform = transforms.Compose(
        [transforms.Resize((size, size)), transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )
    for path in images:
        image = transform(Image.open(path).convert("RGB")).unsqueeze(0)
        words = model.caption_image(image, vocabulary)
        print(f"{path}\t{' '.join(w for w in words if w not in ('<SOS>', '<EOS>'))}")


if __name__ == "__main__":
    main()

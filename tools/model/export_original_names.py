#!/usr/bin/env python3
"""Writes the PyTorch original's CNNtoRNN state_dict keys and shapes (embed 256, hidden 256,
vocabulary 2,994, one LSTM layer; `inception_v3(aux_logits=False)` with `fc` replaced) to
crates/caption-model/tests/fixtures/cnn_to_rnn_names.json, so that a test can check that
caption-model's parameters carry exactly these names.

Usage: tools/.venv/bin/python tools/model/export_original_names.py
"""

import json
from pathlib import Path

import torch

from original import CNNtoRNN

ROOT = Path(__file__).resolve().parents[2]


def main():
    model = CNNtoRNN(256, 256, 2994, 1)
    names = {k: list(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    out = ROOT / "crates" / "caption-model" / "tests" / "fixtures" / "cnn_to_rnn_names.json"
    out.write_text(json.dumps({"torch": torch.__version__, "config": [256, 256, 2994, 1], "params": names}, indent=0) + "\n")
    print(f"{len(names)} tensors")


if __name__ == "__main__":
    main()

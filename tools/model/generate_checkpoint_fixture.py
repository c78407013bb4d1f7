#!/usr/bin/env python3
"""A small checkpoint in the PyTorch original's format, for caption-model's import test.

The original saves `torch.save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
"step": step}, "my_checkpoint.pth.tar")`. A full CNNtoRNN checkpoint is ~100 MB, so this one holds
the original's DecoderRNN (vocabulary 30, embed 8, hidden 12, 1 layer) under its real names
(`decoderRNN.*`) plus one encoder tensor, after two Adam steps. Writes
crates/caption-model/tests/fixtures/original_checkpoint.pth.tar and, for comparison, the same
state_dict as original_checkpoint_state.safetensors, and the same checkpoint in PyTorch's legacy
(pre-1.6, non-zip) format as original_checkpoint_legacy.pth.tar, which the importer names as such.

Usage: tools/.venv/bin/python tools/model/generate_checkpoint_fixture.py
"""

from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-model" / "tests" / "fixtures"


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoderRNN = nn.Module()
        self.decoderRNN.embed = nn.Embedding(30, 8)
        self.decoderRNN.lstm = nn.LSTM(8, 12, 1)
        self.decoderRNN.linear = nn.Linear(12, 30)
        self.encoderCNN = nn.Module()
        self.encoderCNN.inception = nn.Module()
        self.encoderCNN.inception.fc = nn.Linear(16, 8)


def main():
    torch.manual_seed(7)
    model = Tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    for _ in range(2):
        loss = sum(p.sum() for p in model.parameters())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    checkpoint = {"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 2}
    torch.save(checkpoint, OUT / "original_checkpoint.pth.tar")
    torch.save(checkpoint, OUT / "original_checkpoint_legacy.pth.tar", _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(OUT / "original_checkpoint_state.safetensors"))
    print(sorted(model.state_dict()))


if __name__ == "__main__":
    main()

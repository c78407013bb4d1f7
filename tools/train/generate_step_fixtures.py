#!/usr/bin/env python3
"""Training-step parity fixture for caption-train, from the PyTorch original's classes and loop.

The original's frozen-encoder step, three times: its encoder head on 2048-d pooled features (the
replaced `fc`, ReLU), its DecoderRNN (embedding, 2-layer nn.LSTM, linear), its loss
`CrossEntropyLoss(ignore_index=PAD)` over `outputs.reshape(-1, V)` against `captions.reshape(-1)`,
backward, and `torch.optim.Adam` (lr 1e-2, so that three steps move every weight visibly). Dropout
is off (p = 0): masks cannot match across frameworks. The captions are PAD-padded to different
lengths, some ids repeat (the embedding gradient accumulates) and one row is all but PAD.

Writes crates/caption-train/tests/fixtures/train_step.safetensors: `initial.NAME` and `final.NAME`
for every trained tensor (the original's state_dict names), `pooled`, `captions` (int64, length ×
batch) and `losses` (one per step).

Usage: tools/.venv/bin/python tools/train/generate_step_fixtures.py
"""

import os
import sys
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "model"))
from original import DecoderRNN  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-train" / "tests" / "fixtures"
PAD, SOS, EOS = 0, 1, 2


def main():
    torch.manual_seed(20261127)
    embed, hidden, vocab, layers, batch = 16, 24, 57, 2, 5
    fc = nn.Linear(2048, embed)
    decoder = DecoderRNN(embed, hidden, vocab, layers)
    decoder.dropout.p = 0.0
    named = {f"encoderCNN.inception.fc.{k}": v for k, v in fc.named_parameters()}
    named.update({f"decoderRNN.{k}": v for k, v in decoder.named_parameters()})
    initial = {f"initial.{k}": v.detach().clone() for k, v in named.items()}

    pooled = torch.relu(torch.randn(batch, 2048))  # Inception's pooled features are non-negative
    lengths = [9, 4, 7, 2, 9]  # <SOS> ... <EOS>, then PAD
    captions = torch.full((max(lengths), batch), PAD, dtype=torch.int64)
    for b, n in enumerate(lengths):
        captions[0, b] = SOS
        captions[1 : n - 1, b] = torch.randint(4, 12 if b % 2 else vocab, (n - 2,))
        captions[n - 1, b] = EOS

    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    optimizer = torch.optim.Adam(list(named.values()), lr=1e-2)
    losses = []
    for _ in range(3):
        features = torch.relu(fc(pooled))  # EncoderCNN.forward after Inception (dropout p = 0)
        outputs = decoder(features, captions[:-1])
        loss = criterion(outputs.reshape(-1, outputs.shape[2]), captions.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    tensors = dict(initial)
    tensors.update({f"final.{k}": v.detach().clone() for k, v in named.items()})
    tensors.update({"pooled": pooled, "captions": captions, "losses": torch.tensor(losses, dtype=torch.float64)})
    OUT.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT / "train_step.safetensors"),
              metadata={"torch": torch.__version__, "embed": str(embed), "hidden": str(hidden),
                        "vocab": str(vocab), "layers": str(layers)})
    print("losses:", losses)


if __name__ == "__main__":
    main()

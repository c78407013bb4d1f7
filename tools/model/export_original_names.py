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
import torch.nn as nn
import torchvision

ROOT = Path(__file__).resolve().parents[2]


class EncoderCNN(nn.Module):
    def __init__(self, embed_size, train_CNN=False):
        super(EncoderCNN, self).__init__()
        self.train_CNN = train_CNN
        self.inception = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
        self.inception.fc = nn.Linear(self.inception.fc.in_features, embed_size)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)


class DecoderRNN(nn.Module):
    def __init__(self, embed_size, hidden_size, vocab_size, num_layers):
        super(DecoderRNN, self).__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.lstm = nn.LSTM(embed_size, hidden_size, num_layers)
        self.linear = nn.Linear(hidden_size, vocab_size)
        self.dropout = nn.Dropout(0.5)


class CNNtoRNN(nn.Module):
    def __init__(self, embed_size, hidden_size, vocab_size, num_layers):
        super(CNNtoRNN, self).__init__()
        self.encoderCNN = EncoderCNN(embed_size)
        self.decoderRNN = DecoderRNN(embed_size, hidden_size, vocab_size, num_layers)


def main():
    model = CNNtoRNN(256, 256, 2994, 1)
    names = {k: list(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    out = ROOT / "crates" / "caption-model" / "tests" / "fixtures" / "cnn_to_rnn_names.json"
    out.write_text(json.dumps({"torch": torch.__version__, "config": [256, 256, 2994, 1], "params": names}, indent=0) + "\n")
    print(f"{len(names)} tensors")


if __name__ == "__main__":
    main()

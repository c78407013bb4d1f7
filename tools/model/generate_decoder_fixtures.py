#!/usr/bin/env python3
"""DecoderRNN parity fixtures for caption-model, from the PyTorch original's own classes.

The original's DecoderRNN (embedding, nn.LSTM, linear) and the decoding loop of its
`caption_image`, verbatim but for taking features directly. A small seeded decoder (embed 16,
hidden 24, vocabulary 50, 2 LSTM layers), its state_dict, three feature rows and a 7-step caption
batch are written with the outputs to crates/caption-model/tests/fixtures/decoder.safetensors:
- teacher_forced: the original's `forward(features, captions)` logits (8 × 3 × 50, eval: no dropout);
and decoder_greedy.json: `caption_image`'s id list for each feature row (max_length 50, <EOS> = 2;
the rows stop at different steps).

Usage: tools/.venv/bin/python tools/model/generate_decoder_fixtures.py
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from original import DecoderRNN

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-model" / "tests" / "fixtures"


def caption_features(decoder, features, max_length=50, eos=2):
    """The original's CNNtoRNN.caption_image after its encoder call, for one feature row."""
    result_caption = []
    with torch.no_grad():
        x = features.unsqueeze(0)
        states = None
        for _ in range(max_length):
            hiddens, states = decoder.lstm(x, states)
            output = decoder.linear(hiddens.squeeze(0))
            predicted = output.argmax(1)
            result_caption.append(predicted.item())
            x = decoder.embed(predicted).unsqueeze(0)
            if predicted.item() == eos:
                break
    return result_caption


def main():
    torch.manual_seed(20261126)
    embed, hidden, vocab, layers = 16, 24, 50, 2
    decoder = DecoderRNN(embed, hidden, vocab, layers).eval()
    with torch.no_grad():
        # Wider than PyTorch's default init, so that greedy decoding wanders instead of settling
        # on one token at once.
        for parameter in list(decoder.lstm.parameters()) + [decoder.linear.weight]:
            parameter.uniform_(-0.6, 0.6)
    features = torch.randn(3, embed) * torch.tensor([[0.3], [1.0], [4.0]])
    captions = torch.randint(0, vocab, (7, 3))
    with torch.no_grad():
        teacher_forced = decoder(features, captions)
    tensors = {f"decoder.{k}": v.contiguous() for k, v in decoder.state_dict().items()}
    tensors.update({"features": features, "captions": captions.to(torch.int64), "teacher_forced": teacher_forced})
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT / "decoder.safetensors"))
    eos = 2
    greedy = [caption_features(decoder, features[i : i + 1], eos=eos) for i in range(3)]
    sizes = {"embed_size": embed, "hidden_size": hidden, "vocab_size": vocab, "num_layers": layers}
    (OUT / "decoder_greedy.json").write_text(json.dumps({"torch": torch.__version__, "sizes": sizes, "eos": eos, "greedy": greedy}) + "\n")
    print("greedy lengths:", [len(g) for g in greedy])


if __name__ == "__main__":
    main()

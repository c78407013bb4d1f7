#!/usr/bin/env python3
"""Fixtures for caption-model's attention decoder, from the PyTorch reference module
(tools/model/attention_reference.py): a small DecoderWithAttention with seeded random weights,
teacher forcing over three captions of different lengths on a 3 x 3 grid, in float64 and float32:
scores and attention weights (back in input order), the loss (alpha_c = 1), the gradient of
every parameter and of the encoder grid, every parameter after one step of torch.optim.Adam
(lr 4e-4, the tutorial's decoder_lr; default betas and eps) on that gradient, and each image's
greedy caption with its attention weights. Dropout off (eval), so both sides compute the same.

Writes crates/caption-model/tests/fixtures/attention_decoder.safetensors.
Usage: tools/.venv/bin/python tools/model/generate_attention_fixtures.py
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

from attention_reference import DecoderWithAttention, greedy, loss

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-model" / "tests" / "fixtures" / "attention_decoder.safetensors"
SIZES = dict(attention_dim=12, embed_dim=10, decoder_dim=14, vocab_size=23, encoder_dim=16)
CAPTIONS = [[1, 5, 9, 7, 2, 0, 0], [1, 4, 2, 0, 0, 0, 0], [1, 8, 8, 6, 3, 11, 2]]
LENGTHS = [5, 3, 7]


def main():
    torch.manual_seed(0)
    model = DecoderWithAttention(**SIZES, dropout=0.5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-0.4, 0.4)
    encoder_out = torch.rand(3, 9, SIZES["encoder_dim"]) * 2 - 1
    captions = torch.tensor(CAPTIONS)
    lengths = torch.tensor(LENGTHS).unsqueeze(1)
    out = {"captions": captions, "lengths": torch.tensor(LENGTHS), "encoder_out": encoder_out}
    out.update({f"param/{name}": p.detach().clone() for name, p in model.named_parameters()})
    for dtype, prefix in [(torch.float64, "f64"), (torch.float32, "f32")]:
        net = DecoderWithAttention(**SIZES, dropout=0.5).to(dtype)
        net.load_state_dict({k: v.to(dtype) for k, v in model.state_dict().items()})
        net.eval()
        grid = encoder_out.to(dtype).clone().requires_grad_(True)
        scores, sorted_captions, decode_lengths, alphas, order = net(grid, captions, lengths)
        value = loss(scores, sorted_captions, decode_lengths, alphas, alpha_c=1.0)
        value.backward()
        unsort = torch.argsort(order)
        out[f"{prefix}/scores"] = scores[unsort].detach()
        out[f"{prefix}/alphas"] = alphas[unsort].detach()
        out[f"{prefix}/loss"] = value.detach().reshape(1)
        out[f"{prefix}/grad/encoder_out"] = grid.grad
        for name, p in net.named_parameters():
            out[f"{prefix}/grad/{name}"] = p.grad.clone()
        torch.optim.Adam(net.parameters(), lr=4e-4).step()
        for name, p in net.named_parameters():
            out[f"{prefix}/adam/{name}"] = p.detach().clone()
        net.load_state_dict({k: v.to(dtype) for k, v in model.state_dict().items()})
        # Greedy decoding of each image (<start> = 1, <end> = 2, at most 12 words).
        for image in range(3):
            ids, log_prob, alphas = greedy(net, encoder_out[image : image + 1].to(dtype), 1, 2, 12)
            out[f"{prefix}/greedy/{image}/ids"] = torch.tensor(ids)
            out[f"{prefix}/greedy/{image}/log_prob"] = torch.tensor([log_prob], dtype=torch.float64)
            out[f"{prefix}/greedy/{image}/alphas"] = alphas
        # The same with <end> = 19, a word these weights reach: decoding stops there.
        ids, log_prob, alphas = greedy(net, encoder_out[0:1].to(dtype), 1, 19, 12)
        out[f"{prefix}/greedy_end_19/ids"] = torch.tensor(ids)
        out[f"{prefix}/greedy_end_19/alphas"] = alphas
    save_file({k: v.contiguous() for k, v in out.items()}, str(OUT), metadata={"torch": torch.__version__})
    print(f"wrote {OUT} ({len(out)} tensors), loss f64 {out['f64/loss'].item():.12f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Self-critical training's loss and gradients for caption-model, from PyTorch: the teacher-forced
pass over sampled captions with one weight per caption, as self-critical.pytorch's
`RewardCriterion` computes it, for both decoders, in float64.

For fixed sampled captions (as decoding samples them: up to and including their end token, then
PAD; one cut at the longest length, with no end token) and fixed advantages (reward − baseline,
one per caption, repeated over its tokens as `get_self_critical_reward` repeats them; chosen
exactly representable in float32, the type caption-model takes weights in), the loss
is `−Σ log p(token) · advantage · mask / Σ mask`: the mean over every counted token of the batch.

- `lstm/`: the PyTorch original's head (`encoderCNN.inception.fc` + ReLU, `DecoderRNN` of two
  LSTM layers, dropout off) on pooled features, time-major captions whose first token is the one
  the decoder emits from the image features (`<SOS>`).
- `attention/`: Show, Attend and Tell's decoder (tools/model/attention_reference.py, eval) on a
  3 × 3 grid, captions `<SOS>` first, without the doubly stochastic term (self-critical training's
  loss has none).

Writes crates/caption-model/tests/fixtures/scst_loss.safetensors: per decoder `param/NAME` (the
weights), the inputs, `advantages`, `loss` and `grad/NAME` (every parameter's gradient).

Usage: tools/.venv/bin/python tools/train/generate_scst_fixtures.py
Requirements: tools/requirements.txt and tools/requirements-torch.txt (pinned).
"""

import os
import sys
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "model"))
from attention_reference import DecoderWithAttention  # noqa: E402
from original import DecoderRNN  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-model" / "tests" / "fixtures" / "scst_loss.safetensors"
PAD, SOS, EOS = 0, 1, 2


def reward_criterion(logprobs, seq, reward):
    """self-critical.pytorch's RewardCriterion (captioning/modules/losses.py): logprobs and seq are
    batch × length (the log-probability of each sampled token, the tokens), reward batch × length.
    Its sequences pad with 0, which is also its end token, and it shifts the mask right by one so
    that the end token counts; here the end token has an id of its own and PAD follows it, so the
    mask is the tokens that are not PAD: the same tokens."""
    mask = (seq != PAD).to(logprobs.dtype)
    output = -logprobs * reward * mask
    return torch.sum(output) / torch.sum(mask)


def sampled(lengths, longest, vocab, first=SOS):
    """Sampled captions, batch × longest: `first`, words, the end token at each length (a length
    of `longest` with no room for it is a caption cut there), PAD after."""
    captions = torch.full((len(lengths), longest), PAD, dtype=torch.int64)
    for b, n in enumerate(lengths):
        captions[b, 0] = first
        captions[b, 1:n] = torch.randint(3, vocab, (n - 1,))
        if n < longest:
            captions[b, n - 1] = EOS
    return captions


def lstm_case(out):
    embed, hidden, vocab, layers = 16, 24, 57, 2
    fc = nn.Linear(2048, embed).double()
    decoder = DecoderRNN(embed, hidden, vocab, layers).double()
    decoder.dropout.p = 0.0
    named = {f"encoderCNN.inception.fc.{k}": v for k, v in fc.named_parameters()}
    named.update({f"decoderRNN.{k}": v for k, v in decoder.named_parameters()})
    pooled = torch.relu(torch.randn(6, 2048, dtype=torch.float64))
    # Cut at 9 tokens (no end token), finished ones, a caption of its end token alone.
    captions = sampled([9, 4, 7, 2, 6, 1], 9, vocab).t().contiguous()  # time-major, as the original
    captions[0, 5] = EOS  # the decoder emitted <EOS> first: a caption of no word
    advantages = torch.tensor([0.75, -1.25, 0.0, 2.125, -0.375, 0.25], dtype=torch.float64)
    features = torch.relu(fc(pooled))
    outputs = decoder(features, captions[:-1])  # length × batch × vocab
    logprobs = torch.log_softmax(outputs, dim=2).gather(2, captions.unsqueeze(2)).squeeze(2)
    reward = advantages.unsqueeze(0).expand_as(logprobs)
    loss = reward_criterion(logprobs.t(), captions.t(), reward.t())
    loss.backward()
    out.update({f"lstm/param/{k}": v.detach().clone() for k, v in named.items()})
    out.update({f"lstm/grad/{k}": v.grad.clone() for k, v in named.items()})
    out.update({"lstm/pooled": pooled, "lstm/captions": captions, "lstm/advantages": advantages,
                "lstm/loss": loss.detach().reshape(1)})
    return loss.item()


def attention_case(out):
    sizes = dict(attention_dim=12, embed_dim=10, decoder_dim=14, vocab_size=23, encoder_dim=16)
    net = DecoderWithAttention(**sizes, dropout=0.5).double()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.uniform_(-0.4, 0.4)
    net.eval()
    grid = (torch.rand(4, 9, sizes["encoder_dim"], dtype=torch.float64) * 2 - 1)
    # <SOS> and the sampled tokens: cut at 8 (no end token), finished ones, the end token alone.
    captions = sampled([8, 3, 6, 2], 8, sizes["vocab_size"])
    lengths = (captions != PAD).sum(dim=1)
    advantages = torch.tensor([-0.875, 1.5, 0.3125, -2.25], dtype=torch.float64)
    scores, sorted_captions, decode_lengths, _, order = net(grid, captions, lengths.unsqueeze(1))
    targets = sorted_captions[:, 1 : 1 + max(decode_lengths)]
    logprobs = torch.log_softmax(scores, dim=2).gather(2, targets.unsqueeze(2)).squeeze(2)
    reward = advantages[order].unsqueeze(1).expand_as(logprobs)
    loss = reward_criterion(logprobs, targets, reward)
    loss.backward()
    out.update({f"attention/param/{k}": v.detach().clone() for k, v in net.named_parameters()})
    out.update({f"attention/grad/{k}": v.grad.clone() for k, v in net.named_parameters()})
    out.update({"attention/grid": grid, "attention/captions": captions, "attention/lengths": lengths,
                "attention/advantages": advantages, "attention/loss": loss.detach().reshape(1)})
    return loss.item()


def main():
    torch.manual_seed(20261207)
    out = {}
    lstm = lstm_case(out)
    attention = attention_case(out)
    save_file({k: v.contiguous() for k, v in out.items()}, str(OUT), metadata={"torch": torch.__version__})
    print(f"wrote {OUT} ({len(out)} tensors); losses: LSTM {lstm:.12f}, attention {attention:.12f}")


if __name__ == "__main__":
    main()

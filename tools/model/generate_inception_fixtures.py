#!/usr/bin/env python3
"""Inception v3 parity fixtures for caption-model, from torchvision.

Real Inception weights are 95 MB, so every weight here is defined by a formula that
crates/caption-model/tests/inception_parity.rs implements too: tensor `name`, flat index i,
  h = FNV-1a-64(name), z = splitmix64(h + i), u = (z >> 40) / 2**24   (u in [0, 1), exact in f32)
  conv / fc weight: (2u - 1) * sqrt(6 / fan_in)     bn.weight, running_var: 0.5 + u
  bn.bias, running_mean: 0.2 * (u - 0.5)             fc.bias: 0.1 * (u - 0.5)
computed in float64 and rounded to float32. The input (2×3×299×299) is 2u - 1 for the name "input".

Writes crates/caption-model/tests/fixtures/inception_v3.safetensors with torchvision's outputs:
- eval/pooled, eval/logits: eval mode (running statistics), transform_input off;
- eval_ti/pooled, eval_ti/logits: eval mode with transform_input;
- train64/pooled, train64/aux_logits: one forward in train mode (batch statistics; `fc` logits are
  left out because dropout precedes `fc`), in float64, then train64/after_train_pooled: eval mode
  again, which shows the running statistics that train-mode forward updated (momentum 0.1);
- train32/...: the same computed by torch in float32, to measure torch's own float32 error;
and inception_v3_params.json: every state_dict tensor's name and shape.

Usage: tools/.venv/bin/python tools/model/generate_inception_fixtures.py
"""

import json
from pathlib import Path

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-model" / "tests" / "fixtures"
MASK = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def unit(name, n):
    z = (np.arange(n, dtype=np.uint64) + np.uint64(fnv1a64(name))) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def value(name, shape):
    n = int(np.prod(shape)) if shape else 1
    u = unit(name, n)
    if name.endswith("running_var") or name.endswith("bn.weight"):
        v = 0.5 + u
    elif name.endswith("running_mean") or name.endswith("bn.bias"):
        v = 0.2 * (u - 0.5)
    elif name.endswith("fc.bias"):
        v = 0.1 * (u - 0.5)
    elif name.endswith("weight"):
        fan_in = int(np.prod(shape[1:]))
        v = (2 * u - 1) * np.sqrt(6.0 / fan_in)
    else:
        raise ValueError(name)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def model():
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    state = net.state_dict()
    params = {}
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        state[name] = value(name, tuple(tensor.shape))
        params[name] = list(tensor.shape)
    net.load_state_dict(state)
    return net, params


def pooled_hook(net):
    captured = {}
    net.avgpool.register_forward_hook(lambda module, inputs, output: captured.__setitem__("pooled", output.flatten(1)))
    # The spatial features (Mixed_7c's output); the fixture keeps a slice of channels to stay small.
    net.Mixed_7c.register_forward_hook(lambda module, inputs, output: captured.__setitem__("spatial", output))
    return captured


def main():
    torch.set_grad_enabled(False)
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy((2 * unit("input", 2 * 3 * 299 * 299) - 1).astype(np.float32).reshape(2, 3, 299, 299))
    out = {}

    net, params = model()
    captured = pooled_hook(net)
    net.eval()
    out["eval/logits"] = net(x)
    out["eval/pooled"] = captured["pooled"]
    out["eval/spatial_first_64_channels"] = captured["spatial"][:, :64]
    net.transform_input = True
    out["eval_ti/logits"] = net(x)
    out["eval_ti/pooled"] = captured["pooled"]

    # Train mode normalises each channel over 2 images: ill-conditioned enough that float32 results
    # of any two implementations differ by ~1e-4. So the reference is computed in float64 (the same
    # float32 weights, widened), and torch's own float32 run is kept to show its error.
    for dtype, prefix in [(torch.float64, "train64"), (torch.float32, "train32")]:
        net, _ = model()
        net = net.to(dtype)
        captured = pooled_hook(net)
        net.train()
        result = net(x.to(dtype))
        out[f"{prefix}/pooled"] = captured["pooled"]
        out[f"{prefix}/aux_logits"] = result.aux_logits
        net.eval()
        net(x.to(dtype))
        out[f"{prefix}/after_train_pooled"] = captured["pooled"]

    save_file({k: v.contiguous() for k, v in out.items()}, str(OUT / "inception_v3.safetensors"))
    (OUT / "inception_v3_params.json").write_text(json.dumps(
        {"torch": torch.__version__, "torchvision": torchvision.__version__, "params": params}, indent=0) + "\n")
    for k, v in out.items():
        print(k, tuple(v.shape), f"max |x| {v.abs().max().item():.4g}")


if __name__ == "__main__":
    main()

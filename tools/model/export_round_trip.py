#!/usr/bin/env python3
"""The PyTorch round trip of `cargo xtask export --pytorch`: a trained run exported, loaded by the
export's own caption.py (the original's classes, `load_state_dict(strict=True)`), and its greedy
captions compared with ours on every image of a prepared dataset's split.

Steps: (1) `xtask export --checkpoint RUN --pytorch DIR`; (2) our captions of the split's images
(`xtask caption --checkpoint RUN --tokens --json -`); (3) the same from the export folder
(`--checkpoint DIR`), which must be identical; (4) PyTorch's, through DIR/caption.py's `load`,
`transform` and the original's `caption_image` loop, recording at each step the gap between the
two largest logits. An image whose captions differ while the smallest gap on PyTorch's path is
below --tie (1e-3) is a near-tie: float32 rounding in two implementations may pick either word.
Any other difference fails (exit 1).

Usage (after `cargo xtask demo`; the binary `cargo xtask` builds):
  tools/.venv/bin/python tools/model/export_round_trip.py --xtask target/debug/xtask \\
      --run runs/demo --data datasets/shapes --split test
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import torch


def ours(xtask, checkpoint, paths):
    """Our greedy tokens per image, paths given on standard input."""
    command = [xtask, "caption", "--checkpoint", str(checkpoint), "--tokens", "--json", "--device", "cpu", "-"]
    out = subprocess.run(command, input="".join(f"{p}\n" for p in paths), capture_output=True, text=True, check=True)
    return {json.loads(line)["image"]: json.loads(line)["tokens"] for line in out.stdout.splitlines()}


def pytorch_with_gaps(script, model, vocabulary, config, path):
    """The original's caption_image loop on the export, with the smallest top-2 logit gap."""
    image = script.transform(config)(script.Image.open(path).convert("RGB")).unsqueeze(0)
    ids, smallest = [], float("inf")
    with torch.no_grad():
        x = model.encoderCNN(image).unsqueeze(0)
        states = None
        for _ in range(config["max_length"]):
            hiddens, states = model.decoderRNN.lstm(x, states)
            output = model.decoderRNN.linear(hiddens.squeeze(0))
            top = output.topk(2, dim=1).values[0]
            smallest = min(smallest, float(top[0] - top[1]))
            predicted = output.argmax(1)
            ids.append(predicted.item())
            x = model.decoderRNN.embed(predicted).unsqueeze(0)
            if vocabulary.itos[predicted.item()] == "<EOS>":
                break
    words = [vocabulary.itos[i] for i in ids if vocabulary.itos[i] not in ("<PAD>", "<SOS>", "<EOS>")]
    return words, smallest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xtask", required=True, help="the xtask binary")
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the prepared dataset the run trained on")
    parser.add_argument("--split", default="test")
    parser.add_argument("--export", type=Path, help="export folder (default: a temporary one)")
    parser.add_argument("--tie", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(2)

    export = args.export or Path(tempfile.mkdtemp()) / "export"
    subprocess.run([args.xtask, "export", "--checkpoint", str(args.run), "--pytorch", str(export)], check=True)
    images = pq.read_table(args.data / "images.parquet").to_pylist()
    paths = [str(args.data / row["path"]) for row in images if row["split"] == args.split]
    mine = ours(args.xtask, args.run, paths)
    from_export = ours(args.xtask, export, paths)
    assert from_export == mine, "the export folder captions differently here than the run it came from"

    spec = importlib.util.spec_from_file_location("exported_caption", export / "caption.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model, vocabulary, config = script.load(export)

    same, ties, different = 0, [], []
    for path in paths:
        words, gap = pytorch_with_gaps(script, model, vocabulary, config, path)
        assert words == script.caption(model, vocabulary, config, path), "the script's own caption differs"
        if words == mine[path]:
            same += 1
        elif gap < args.tie:
            ties.append((path, gap, words, mine[path]))
        else:
            different.append((path, gap, words, mine[path]))
    print(f"{len(paths)} images of the {args.split} split, exported from {args.run} to {export}")
    print(f"  the export loads strictly into the original's CNNtoRNN; captioned here from it: identical")
    print(f"  PyTorch caption = ours:               {same}")
    print(f"  differ at a near-tie (gap < {args.tie:g}):  {len(ties)}")
    print(f"  differ otherwise:                     {len(different)}")
    for path, gap, words, our_words in ties + different:
        print(f"    {Path(path).name}: smallest top-2 gap {gap:.2e}; PyTorch {' '.join(words)!r}, ours {' '.join(our_words)!r}")
    sys.exit(1 if different else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What `cargo xtask prepare-data --captions captions.txt --images-dir DIR --out OUT` does, in
Python, as a script would: read Kaggle's captions.txt (pandas), split images 80/10/10 by a hash
of their name, check every image (PIL: opened and decoded; missing or broken ones skipped and
listed), tokenize every caption with spaCy (lowercased), build the original's vocabulary on the
training captions, and write captions and images as parquet (pyarrow) with a manifest.

Usage: tools/.venv/bin/python tools/cli/prepare_python.py captions.txt IMAGES_DIR OUT_DIR
"""

import hashlib
import json
import os
import sys

import pandas as pd
import spacy
from PIL import Image


def split_of(name):
    position = int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big") / 2**64
    return "train" if position < 0.8 else "validation" if position < 0.9 else "test"


def check(path):
    try:
        with Image.open(path) as image:
            image.convert("RGB").load()
            return image.size, None
    except FileNotFoundError:
        return None, "missing file"
    except Exception as e:  # noqa: BLE001 - every unusable image is listed with its reason
        return None, f"cannot decode: {e}"


def main():
    captions_path, images_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    df = pd.read_csv(captions_path)
    tokenizer = spacy.blank("en").tokenizer
    images, skipped = {}, []
    for name in df["image"].unique():
        size, problem = check(os.path.join(images_dir, name))
        if problem:
            skipped.append({"image": name, "reason": problem})
        else:
            images[name] = {"image": name, "split": split_of(name), "width": size[0], "height": size[1]}
    words = [[t.text.lower() for t in tokenizer(c)] for c in df["caption"]]
    stoi, counts = {"<PAD>": 0, "<SOS>": 1, "<EOS>": 2, "<UNK>": 3}, {}
    for name, tokens in zip(df["image"], words):
        if name in images and images[name]["split"] == "train":
            for w in tokens:
                counts[w] = counts.get(w, 0) + 1
                if counts[w] == 5:
                    stoi[w] = len(stoi)
    rows = [
        {"image": n, "caption": c, "token_ids": [stoi.get(w, 3) for w in t]}
        for n, c, t in zip(df["image"], df["caption"], words)
        if n in images
    ]
    os.makedirs(out, exist_ok=True)
    pd.DataFrame(rows, columns=["image", "caption", "token_ids"]).to_parquet(os.path.join(out, "captions.parquet"))
    pd.DataFrame(list(images.values())).to_parquet(os.path.join(out, "images.parquet"))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"vocabulary": len(stoi), "skipped_images": skipped, "captions": len(rows)}, f)
    print(f"{len(images)} images, {len(rows)} captions, {len(skipped)} skipped, vocabulary {len(stoi)} ids")


if __name__ == "__main__":
    main()

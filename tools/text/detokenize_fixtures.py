#!/usr/bin/env python3
"""Detokenization fixture for caption-text, from the real spaCy and real COCO captions.

COCO's captions are written as people write (no space before a full stop, "dog's", "black and
white" or "black-and-white"), unlike Flickr8k's pre-tokenized ones. For every caption of the COCO
sample in ../shared/data/coco (train and val), with its runs of whitespace collapsed, this writes
spaCy's tokens (`spacy.blank("en")`, as the original tokenizes) and the text itself into
crates/caption-text/tests/fixtures/detokenize_coco.json. `caption_text::detokenize` over the
tokens should give back the text.

Usage: tools/.venv/bin/python tools/text/detokenize_fixtures.py [--shared ../shared]
"""

import argparse
import json
from pathlib import Path

import spacy

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-text" / "tests" / "fixtures" / "detokenize_coco.json"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    nlp = spacy.blank("en")
    cases = []
    for name in ["captions_train2017.json", "captions_val2017.json"]:
        annotations = json.loads((args.shared / "data" / "coco" / name).read_text())["annotations"]
        for annotation in annotations:
            text = " ".join(annotation["caption"].split())
            cases.append({"tokens": [token.text for token in nlp.tokenizer(text)], "text": text})
    OUT.write_text(json.dumps({"spacy": spacy.__version__, "cases": cases}, indent=0, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} captions to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

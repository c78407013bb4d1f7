#!/usr/bin/env python3
"""What `cargo xtask bleu --input FILE --compat {nltk,sacrebleu,coco} --json` does, in Python:
reads the JSON Lines file ({"id", "hypothesis", "references"} per line), splits on whitespace,
scores BLEU-1..4 with the named library and prints one JSON object. Run as a whole process by
tools/cli/bench_cli.py, import and start-up included, as a user's script would be.

Usage: tools/.venv/bin/python tools/cli/bleu_python.py FILE.jsonl nltk|sacrebleu|coco
"""

import json
import sys


def read(path):
    hyps, refs = [], []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                hyps.append(record["hypothesis"])
                refs.append(record["references"])
    return hyps, refs


def main():
    path, library = sys.argv[1], sys.argv[2]
    hyps, refs = read(path)
    if library == "nltk":
        from nltk.translate.bleu_score import corpus_bleu

        hyp_tokens = [h.split() for h in hyps]
        ref_tokens = [[r.split() for r in rs] for rs in refs]
        weights = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]
        scores = [corpus_bleu(ref_tokens, hyp_tokens, weights=w) for w in weights]
    elif library == "sacrebleu":
        from sacrebleu.metrics import BLEU

        width = max(len(rs) for rs in refs)
        streams = [[rs[k] if k < len(rs) else None for rs in refs] for k in range(width)]
        scores = [BLEU(tokenize="none", max_ngram_order=n).corpus_score(hyps, streams).score / 100 for n in range(1, 5)]
    elif library == "coco":
        from pycocoevalcap.bleu.bleu import Bleu

        gts = {i: rs for i, rs in enumerate(refs)}
        res = {i: [h] for i, h in enumerate(hyps)}
        scores, _ = Bleu(4).compute_score(gts, res, verbose=0)
    else:
        sys.exit(f"unknown library {library}")
    print(json.dumps({f"bleu_{n + 1}": s for n, s in enumerate(scores)}))


if __name__ == "__main__":
    main()

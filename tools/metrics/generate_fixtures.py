#!/usr/bin/env python3
"""Golden BLEU / CIDEr-D / ROUGE-L fixtures for caption-metrics, from the real libraries.

Writes crates/caption-metrics/tests/fixtures/{random,flickr8k}.json:
- random.json: 1,000 seeded random corpora (small vocabularies so n-gram matches are common,
  1-5 references of varied lengths per hypothesis) plus hand-picked edge cases, each scored by
  nltk (corpus_bleu with every SmoothingFunction method, default and non-default parameters),
  pycocoevalcap (Bleu(n) corpus and per-sentence, Cider, Rouge) and sacrebleu (every smoothing,
  with and without effective order, one BLEU object per order), plus sentence-level scores.
- flickr8k.json: the real Flickr8k captions (../shared/data/flickr8k/captions.txt), each image's
  first caption scored against its other four, lowercased and split on whitespace.

Usage: tools/.venv/bin/python tools/metrics/generate_fixtures.py [--shared ../shared]
Requirements: tools/requirements.txt (pinned).
"""

import argparse
import contextlib
import csv
import io
import json
import math
import random
import sys
import warnings
from pathlib import Path

import nltk
import sacrebleu
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from sacrebleu.metrics import BLEU

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-metrics" / "tests" / "fixtures"
WORDS = "a dog the man on in runs red ball two of grass water is with".split()
SACRE_SMOOTHING = ["none", "floor", "add-k", "exp"]


def uniform_weights(n):
    return [tuple([1.0 / k] * k) for k in range(1, n + 1)]


def nltk_scores(refs, hyps, max_order, smoothing, weights=None, auto_reweigh=False):
    weights = weights or uniform_weights(max_order)
    try:
        scores = corpus_bleu(refs, hyps, weights=weights, smoothing_function=smoothing, auto_reweigh=auto_reweigh)
    except (AssertionError, IndexError, ZeroDivisionError) as error:
        return {"error": type(error).__name__}
    return [float(s) for s in (scores if isinstance(scores, list) else [scores])]


def coco_scores(gts, res, max_order):
    with contextlib.redirect_stdout(io.StringIO()):
        corpus, sentences = Bleu(max_order).compute_score(gts, res)
    return {"corpus": [float(x) for x in corpus], "sentences": [[float(s[i]) for s in sentences] for i in range(len(gts))]}


def sacre_scores(hyp_text, ref_text, max_order, smoothing, effective_order):
    width = max(len(r) for r in ref_text)
    streams = [[r[i] if i < len(r) else None for r in ref_text] for i in range(width)]
    by_order = []
    full = None
    for n in range(1, max_order + 1):
        metric = BLEU(tokenize="none", smooth_method=smoothing, max_ngram_order=n, effective_order=effective_order)
        score = metric.corpus_score(hyp_text, streams)
        by_order.append(score.score)
        if n == max_order:
            full = score
            signature = str(metric.get_signature())
    return {
        "bleu": by_order,
        "precisions": [float(p) for p in full.precisions],
        "bp": float(full.bp),
        "signature": signature,
        "formatted": str(full),
    }


def score_case(hyps, refs, max_order, sentences=True, full=True):
    """Every profile on one corpus; hyps: list of token lists, refs: list of lists of token lists."""
    hyp_text = [" ".join(h) for h in hyps]
    ref_text = [[" ".join(r) for r in rs] for rs in refs]
    gts = {i: ref_text[i] for i in range(len(hyps))}
    res = {i: [hyp_text[i]] for i in range(len(hyps))}
    case = {
        "hyps": hyp_text,
        "refs": ref_text,
        "max_order": max_order,
        "nltk": {},
        # pycocoevalcap cooks 4-grams whatever Bleu(n) says: n > 4 raises IndexError there.
        "coco": coco_scores(gts, res, max_order) if max_order <= 4 else {"error": "IndexError"},
        "sacrebleu": {},
    }
    default = SmoothingFunction()
    custom = SmoothingFunction(epsilon=0.2, alpha=3, k=2)
    for m in range(8):
        case["nltk"][f"method{m}"] = nltk_scores(refs, hyps, max_order, getattr(default, f"method{m}"))
        if full:
            case["nltk"][f"method{m}-custom"] = nltk_scores(refs, hyps, max_order, getattr(custom, f"method{m}"))
    if sentences:
        case["nltk_sentences"] = {
            f"method{m}": [
                nltk_scores([refs[i]], [hyps[i]], max_order, getattr(default, f"method{m}")) for i in range(len(hyps))
            ]
            for m in (0, 1, 4, 7)
        }
    for smoothing in SACRE_SMOOTHING:
        for eff in (False, True):
            scored = sacre_scores(hyp_text, ref_text, max_order, smoothing, eff)
            if not full and (smoothing, eff) != ("exp", False):
                # The signature and printed line once per corpus keep the file small.
                del scored["signature"], scored["formatted"], scored["precisions"]
            case["sacrebleu"][f"{smoothing}{'-eff' if eff else ''}"] = scored
    if max_order <= 4:
        try:
            cider, cider_segments = Cider().compute_score(gts, res)
            case["cider"] = {"score": float(cider), "segments": [float(x) for x in cider_segments]}
        except ValueError as error:  # no reference n-gram at all: max() of an empty sequence
            case["cider"] = {"error": type(error).__name__}
    rouge, rouge_segments = Rouge().compute_score(gts, res)
    case["rouge"] = {"score": float(rouge), "segments": [float(x) for x in rouge_segments]}
    return case


def random_sentence(rng, vocab, length):
    return [rng.choice(vocab) for _ in range(length)]


def random_case(rng):
    vocab = rng.sample(WORDS, rng.randint(2, 8))
    segments = rng.randint(1, 6)
    hyps, refs = [], []
    for _ in range(segments):
        base = random_sentence(rng, vocab, rng.choice([rng.randint(0, 4), rng.randint(3, 15)]))
        hyps.append(base)
        rs = []
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.5 and base:
                # A noisy copy of the hypothesis: many shared n-grams.
                r = [w if rng.random() < 0.7 else rng.choice(vocab) for w in base]
                r = r[: rng.randint(max(0, len(r) - 3), len(r))] + random_sentence(rng, vocab, rng.randint(0, 3))
            else:
                r = random_sentence(rng, vocab, rng.randint(0, 16))
            rs.append(r)
        refs.append(rs)
    return hyps, refs


def edge_cases():
    s = "a dog runs on the grass with a red ball".split()
    long_hyp = [WORDS[i % 7] for i in range(300)]
    long_ref = [WORDS[(i * 3) % 7] for i in range(280)]
    return {
        "empty-hypothesis": ([[]], [[s]]),
        "empty-hypothesis-and-reference": ([[]], [[[]]]),
        "empty-reference": ([s], [[[], s[:3]]]),
        "hypothesis-shorter-than-n": ([["a"], ["a", "dog"], ["a", "dog", "runs"]], [[s], [s], [s]]),
        "single-token": ([["a"]], [[["a"]]]),
        "no-4gram-match": ([s], [[s[:3] + ["x"] + s[3:6] + ["y"] + s[6:]]]),
        "no-bigram-match": ([["a", "b", "c", "d", "e"]], [[["e", "d", "c", "b", "a"]]]),
        "no-match": ([["x", "y", "z", "w"]], [[s]]),
        "identical": ([s], [[s]]),
        "identical-two-segments": ([s, s[:5]], [[s], [s[:5], s]]),
        "tie-in-closest-length": ([s[:6]], [[s[:5], s[:7]]]),
        "repeated-words": ([["the"] * 7], [["the cat is on the mat".split(), "there is a cat on the mat".split()]]),
        "very-long": ([long_hyp, long_hyp[:150]], [[long_ref, long_hyp[:200]], [long_ref[:10]]]),
        "long-vs-short": ([s * 5], [[s]]),
        "many-references": ([s], [[s[i:] for i in range(9)]]),
        "nltk-docstring": (
            [
                "It is a guide to action which ensures that the military always obeys the commands of the party".split(),
                "he read the book because he was interested in world history".split(),
            ],
            [
                [
                    "It is a guide to action that ensures that the military will forever heed Party commands".split(),
                    "It is the guiding principle which guarantees the military forces always being under the command of the Party".split(),
                    "It is the practical guide for the army always to heed the directions of the party".split(),
                ],
                ["he was interested in world history because he read the book".split()],
            ],
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared/ folder with data/")
    parser.add_argument("--corpora", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    versions = {
        "python": sys.version.split()[0],
        "nltk": nltk.__version__,
        "sacrebleu": sacrebleu.__version__,
        "pycocoevalcap": "1.2",
    }

    rng = random.Random(args.seed)
    cases = []
    for name, (hyps, refs) in edge_cases().items():
        for max_order in (4, 6) if name in ("very-long", "identical", "long-vs-short") else (4,):
            case = score_case(hyps, refs, max_order)
            case["name"] = f"{name}-n{max_order}"
            cases.append(case)
    for i in range(args.corpora):
        hyps, refs = random_case(rng)
        max_order = 5 if i % 50 == 49 else 4
        case = score_case(hyps, refs, max_order, sentences=i < 200, full=i < 300)
        case["name"] = f"random-{i:04d}"
        cases.append(case)
    # nltk's custom weights and auto_reweigh on a few corpora.
    weights = [(0.5, 0.5), (0.1, 0.3, 0.5, 0.1), (0.333, 0.333, 0.334), (0.25, 0.25, 0.25, 0.25)]
    for case in cases[:300]:
        hyps = [h.split() for h in case["hyps"]]
        refs = [[r.split() for r in rs] for rs in case["refs"]]
        case["nltk_weights"] = {
            "weights": weights,
            "method1": nltk_scores(refs, hyps, 4, SmoothingFunction().method1, weights=weights),
            "method1-auto-reweigh": nltk_scores(
                refs, hyps, 4, SmoothingFunction().method1, weights=[(0.25, 0.25, 0.25, 0.25)], auto_reweigh=True
            ),
        }
    write(OUT / "random.json", {"versions": versions, "seed": args.seed, "cases": cases})

    captions = Path(args.shared) / "data" / "flickr8k" / "captions.txt"
    by_image = {}
    with open(captions, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_image.setdefault(row["image"], []).append(row["caption"].lower().split())
    hyps = [caps[0] for caps in by_image.values()]
    refs = [caps[1:] for caps in by_image.values()]
    case = score_case(hyps, refs, 4, sentences=False, full=True)
    flickr = {
        "versions": versions,
        "images": len(hyps),
        "first_image": next(iter(by_image)),
        "nltk": case["nltk"],
        "coco_corpus": case["coco"]["corpus"],
        "coco_sentences_first_500": case["coco"]["sentences"][:500],
        "sacrebleu": case["sacrebleu"],
        "cider": case["cider"]["score"],
        "cider_segments_first_500": case["cider"]["segments"][:500],
        "rouge": case["rouge"]["score"],
        "rouge_segments_first_500": case["rouge"]["segments"][:500],
    }
    write(OUT / "flickr8k.json", flickr)
    coco_sample(Path(args.shared) / "data" / "coco" / "captions_val2017.json", versions)


def coco_sample(annotations_path, versions):
    """`cargo xtask bleu --results --annotations` on the real COCO sample, as COCOEvalCap pairs them:
    each image's first caption as its result, scored against all of its annotated captions."""
    annotations = json.loads(annotations_path.read_text())
    by_image = {}
    for record in annotations["annotations"]:
        by_image.setdefault(record["image_id"], []).append(record["caption"])
    results = [{"image_id": image, "caption": captions[0]} for image, captions in list(by_image.items())[:60]]
    out = ROOT / "xtask" / "tests" / "fixtures"
    out.mkdir(parents=True, exist_ok=True)
    write(out / "coco_results.json", results)
    gts = {r["image_id"]: by_image[r["image_id"]] for r in results}
    res = {r["image_id"]: [r["caption"]] for r in results}
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    expected = {"versions": versions, "bleu": [float(b) for b in bleu], "cider": float(cider), "rouge_l": float(rouge)}
    write(out / "coco_expected.json", expected)


def write(path, data):
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

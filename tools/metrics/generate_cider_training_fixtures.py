#!/usr/bin/env python3
"""Golden fixtures for caption-metrics' TrainingCiderD: CIDEr-D with document frequencies and the
reference length counted once over a training corpus (self-critical training's reward,
self-critical.pytorch's `CiderD(df=<train idxs>)`), computed by pycocoevalcap 1.2's own
CiderScorer.

pycocoevalcap counts document frequencies over the corpus it scores and takes log(len(crefs)) as
the reference length inside `compute_cider`. Here a first CiderScorer cooks the training
references and counts their frequencies (`compute_doc_freq`); a second cooks the captions to
score with their references, takes the first's frequencies, and sees its reference list through
a list whose len() is the number of training images, so that `compute_cider`'s own
`np.log(float(len(self.crefs)))` is the training reference length. Every other operation is
pycocoevalcap's.

Writes crates/caption-metrics/tests/fixtures/cider_training_df.json:
- random: 200 seeded training corpora (small vocabularies, 1-5 references per image) with 12
  captions each, half scored against a training image's references, half against new references,
  some with words the training corpus never holds;
- flickr8k: the first 1,000 images of the official training split (../shared/data/flickr8k,
  captions lowercased and split on whitespace) as the training corpus; 300 of them captioned by a
  seeded edit of one of their captions (a word dropped, repeated or swapped) and scored against
  all five references, and 100 test images' first captions against their other four.

Usage: tools/.venv/bin/python tools/metrics/generate_cider_training_fixtures.py [--shared ../shared]
Requirements: tools/requirements.txt (pinned).
"""

import argparse
import csv
import json
import random
from pathlib import Path

from importlib.metadata import version

from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.cider.cider_scorer import CiderScorer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-metrics" / "tests" / "fixtures" / "cider_training_df.json"
WORDS = "a dog the man on in runs red ball two of grass water is with".split()
UNSEEN = "zebra okapi tram".split()


class CountedAs(list):
    """The scored references, whose len() is the number of training images."""

    def __init__(self, items, length):
        super().__init__(items)
        self.length = length

    def __len__(self):
        return self.length


def training_df_scores(training, hyps, refs):
    """pycocoevalcap's per-caption CIDEr-D of hyps[i] against refs[i], with the document
    frequencies and reference length of `training` (per image, its references)."""
    train = CiderScorer(n=4, sigma=6.0)
    for references in training:
        train.cook_append(None, [" ".join(r) for r in references])
    train.compute_doc_freq()
    scorer = CiderScorer(n=4, sigma=6.0)
    for hyp, references in zip(hyps, refs):
        scorer.cook_append(" ".join(hyp), [" ".join(r) for r in references])
    scorer.document_frequency = train.document_frequency
    scorer.crefs = CountedAs(scorer.crefs, len(train.crefs))
    return [float(s) for s in scorer.compute_cider()]


def check_the_override():
    """Scoring a corpus with its own frequencies is pycocoevalcap's Cider: the override changes
    nothing else."""
    rng = random.Random(0)
    refs = [[sentence(rng, WORDS) for _ in range(3)] for _ in range(20)]
    hyps = [sentence(rng, WORDS) for _ in range(20)]
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(h)] for i, h in enumerate(hyps)}
    _, expected = Cider().compute_score(gts, res)
    assert training_df_scores(refs, hyps, refs) == [float(s) for s in expected]


def sentence(rng, words, shortest=1, longest=10):
    return [rng.choice(words) for _ in range(rng.randint(shortest, longest))]


def random_cases(rng):
    cases = []
    for _ in range(200):
        vocabulary = rng.sample(WORDS, rng.randint(3, len(WORDS)))
        training = [[sentence(rng, vocabulary) for _ in range(rng.randint(1, 5))] for _ in range(rng.randint(2, 40))]
        hyps, refs = [], []
        for i in range(12):
            hyp = sentence(rng, vocabulary + (UNSEEN if i % 3 == 0 else []), 0 if i == 5 else 1)
            hyps.append(hyp)
            if i % 2 == 0:
                refs.append(rng.choice(training))
            else:
                refs.append([sentence(rng, vocabulary + UNSEEN) for _ in range(rng.randint(1, 5))])
        cases.append({"training": training, "hyps": hyps, "refs": refs, "scores": training_df_scores(training, hyps, refs)})
    return cases


def edit(rng, words):
    words = list(words)
    kind = rng.randrange(3)
    i = rng.randrange(len(words))
    if kind == 0 and len(words) > 1:
        del words[i]
    elif kind == 1:
        words.insert(i, words[i])
    else:
        j = rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    return words


def flickr8k_case(rng, shared):
    root = Path(shared) / "data" / "flickr8k"
    by_image = {}
    with open(root / "captions.txt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_image.setdefault(row["image"], []).append(row["caption"].lower().split())
    train_images = (root / "Flickr_8k.trainImages.txt").read_text().split()[:1000]
    test_images = (root / "Flickr_8k.testImages.txt").read_text().split()[:100]
    training = [by_image[image] for image in train_images]
    hyps, refs, images = [], [], []
    for index in rng.sample(range(len(train_images)), 300):
        references = training[index]
        hyps.append(edit(rng, rng.choice(references)))
        refs.append(references)
        images.append(index)
    for image in test_images:
        hyps.append(by_image[image][0])
        refs.append(by_image[image][1:])
        images.append(None)
    return {
        "training_images": train_images,
        "training": training,
        "hyps": hyps,
        "refs": refs,
        "training_image_of_each": images,
        "scores": training_df_scores(training, hyps, refs),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    check_the_override()
    fixture = {
        "versions": {"pycocoevalcap": version("pycocoevalcap")},
        "seed": args.seed,
        "random": random_cases(rng),
        "flickr8k": flickr8k_case(rng, args.shared),
    }
    OUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()

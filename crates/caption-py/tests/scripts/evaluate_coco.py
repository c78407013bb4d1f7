"""A caption evaluation script written for pycocoevalcap, as papers' repositories write them: COCO
annotations and a results file in, the scorer loop of pycocoevalcap's COCOEvalCap.evaluate, every
score printed. It tokenizes in Python (lowercase, punctuation dropped) instead of the Java PTB
tokenizer, and leaves out METEOR and SPICE (Java programs).

test_drop_in.py runs it as it is and with its three scorer imports changed to caption.metrics,
and compares the outputs.

Usage: python evaluate_coco.py ANNOTATIONS.json RESULTS.json
"""

import json
import re
import sys

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge


def tokenize(caption):
    return " ".join(re.findall(r"[a-z0-9]+", caption.lower()))


def main(annotation_file, results_file):
    with open(annotation_file) as f:
        annotations = json.load(f)["annotations"]
    with open(results_file) as f:
        results = json.load(f)
    gts, res = {}, {}
    for annotation in annotations:
        gts.setdefault(annotation["image_id"], []).append(tokenize(annotation["caption"]))
    for result in results:
        res[result["image_id"]] = [tokenize(result["caption"])]
    gts = {image_id: gts[image_id] for image_id in res}

    scorers = [
        (Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]),
        (Rouge(), "ROUGE_L"),
        (Cider(), "CIDEr"),
    ]
    evaluation, per_image = {}, {}
    for scorer, method in scorers:
        print("computing %s score..." % (scorer.method()))
        score, scores = scorer.compute_score(gts, res)
        if type(method) == list:
            for sc, scs, m in zip(score, scores, method):
                evaluation[m] = sc
                per_image[m] = list(scs)
                print("%s: %0.3f" % (m, sc))
        else:
            evaluation[method] = score
            per_image[method] = list(scores)
            print("%s: %0.3f" % (method, score))
    for metric, score in evaluation.items():
        print(f"{metric}: {score!r}")
    for metric, scores in per_image.items():
        print(metric, [repr(float(s)) for s in scores])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

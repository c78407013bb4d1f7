"""Caption metrics equal to the Python libraries papers use, computed in Rust.

pycocoevalcap's scorers, with its interface (change the import line only)::

    from caption.metrics import Bleu, Cider, Rouge   # was: from pycocoevalcap.bleu.bleu import Bleu ...
    score, scores = Bleu(4).compute_score(gts, res)  # gts: {id: [ref, ...]}, res: {id: [hyp]}

``caption.metrics.nltk`` has nltk's ``corpus_bleu``/``sentence_bleu``/``SmoothingFunction``,
``caption.metrics.sacrebleu`` sacrebleu's ``corpus_bleu``/``sentence_bleu``, and
``TrainingCiderD`` is CIDEr-D with document frequencies from a training corpus (the reward of
self-critical training). No Java, no subprocess. METEOR, SPICE and the PTB tokenizer (Java
programs in pycocoevalcap) are not here.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence, Union

import numpy as np

from .. import _native

__all__ = ["Bleu", "Cider", "Rouge", "TrainingCiderD"]

_JAVA_ONLY = {
    "Meteor": "METEOR",
    "Spice": "SPICE",
    "PTBTokenizer": "the Stanford PTB tokenizer",
}


def __getattr__(name: str) -> Any:
    if name in _JAVA_ONLY:
        raise ImportError(
            f"caption.metrics has no {name}: {_JAVA_ONLY[name]} is a Java program in pycocoevalcap; "
            "import it from pycocoevalcap (it needs Java)"
        )
    raise AttributeError(f"module 'caption.metrics' has no attribute {name!r}")


Gts = Mapping[Hashable, Sequence[str]]


def _pairs(gts: Gts, res: Gts) -> tuple[list[str], list[list[str]]]:
    """The hypotheses and references in ``gts``' key order, with pycocoevalcap's checks."""
    hypotheses, references = [], []
    for image in gts.keys():
        hypo, ref = res[image], gts[image]
        assert type(hypo) is list
        assert len(hypo) == 1
        assert type(ref) is list
        assert len(ref) > 0
        hypotheses.append(hypo[0])
        references.append(ref)
    return hypotheses, references


class Bleu:
    """pycocoevalcap's ``Bleu(n)``: BLEU-1..n with its epsilons and the closest reference length."""

    def __init__(self, n: int = 4) -> None:
        self._n = n
        self._hypo_for_image: dict[Hashable, Any] = {}
        self.ref_for_image: dict[Hashable, Any] = {}

    def compute_score(self, gts: Gts, res: Gts, verbose: int = 1) -> tuple[list[float], list[list[float]]]:
        """``([BLEU-1, ..., BLEU-n], [per-image BLEU-1 list, ..., per-image BLEU-n list])``;
        with ``verbose`` (the default, as pycocoevalcap) prints its totals and length ratio."""
        assert gts.keys() == res.keys()
        hypotheses, references = _pairs(gts, res)
        bleus, per_image, testlen, reflen, guess, correct = _native.coco_bleu(hypotheses, references, self._n)
        if verbose > 0:
            print({"testlen": testlen, "reflen": reflen, "guess": guess, "correct": correct})
            print("ratio:", (testlen + 1e-15) / (reflen + 1e-9))
        return bleus, per_image

    def method(self) -> str:
        return "Bleu"


class Cider:
    """pycocoevalcap's ``Cider``: CIDEr-D with document frequencies over the evaluated references."""

    def __init__(self, test: Any = None, refs: Any = None, n: int = 4, sigma: float = 6.0) -> None:
        self._n = n
        self._sigma = sigma

    def compute_score(self, gts: Gts, res: Gts) -> tuple[np.float64, np.ndarray]:
        """The corpus score (the mean) and the per-image scores as a numpy array."""
        assert gts.keys() == res.keys()
        hypotheses, references = _pairs(gts, res)
        scores = np.array(_native.coco_cider(hypotheses, references, self._n, self._sigma))
        return np.mean(scores), scores

    def method(self) -> str:
        return "CIDEr"


class Rouge:
    """pycocoevalcap's ``Rouge``: ROUGE-L (LCS F-measure, beta 1.2), words split on single spaces."""

    def __init__(self) -> None:
        self.beta = 1.2

    def calc_score(self, candidate: Sequence[str], refs: Sequence[str]) -> float:
        """ROUGE-L of ``candidate`` (a list holding one sentence) against ``refs``."""
        assert len(candidate) == 1
        assert len(refs) > 0
        return _native.coco_rouge([candidate[0]], [list(refs)], self.beta)[0]

    def compute_score(self, gts: Gts, res: Gts) -> tuple[np.float64, np.ndarray]:
        """The mean ROUGE-L and the per-image scores as a numpy array."""
        assert gts.keys() == res.keys()
        hypotheses, references = _pairs(gts, res)
        scores = np.array(_native.coco_rouge(hypotheses, references, self.beta))
        return np.mean(scores), scores

    def method(self) -> str:
        return "Rouge"


class TrainingCiderD:
    """CIDEr-D whose document frequencies and reference length are counted once over a training
    corpus's references, each caption then scored alone: self-critical training's reward
    (self-critical.pytorch's ``CiderD(df=...)``), equal to pycocoevalcap's ``CiderScorer`` given
    those frequencies.

    ``references``: per training image its reference captions (a list of lists, or a dict whose
    values are the lists), words separated by whitespace.
    """

    def __init__(
        self,
        references: Union[Mapping[Hashable, Sequence[str]], Sequence[Sequence[str]]],
        n: int = 4,
        sigma: float = 6.0,
    ) -> None:
        lists = references.values() if isinstance(references, Mapping) else references
        self._scorer = _native.TrainingCiderD([list(refs) for refs in lists], n, sigma)

    @property
    def images(self) -> int:
        """Training images the frequencies were counted over."""
        return self._scorer.images

    def score(self, hypothesis: str, references: Sequence[str]) -> float:
        """CIDEr-D of one caption against its image's references."""
        return self._scorer.scores([hypothesis], [list(references)])[0]

    def compute_score(self, gts: Gts, res: Any) -> tuple[np.float64, np.ndarray]:
        """The mean and the per-caption scores. ``res`` is pycocoevalcap's ``{id: [caption]}``, or
        self-critical.pytorch's list of ``{"image_id": id, "caption": [caption]}``."""
        if isinstance(res, Mapping):
            assert gts.keys() == res.keys()
            hypotheses, references = _pairs(gts, res)
        else:
            hypotheses = [entry["caption"][0] for entry in res]
            references = [list(gts[entry["image_id"]]) for entry in res]
        scores = np.array(self._scorer.scores(hypotheses, references))
        return np.mean(scores), scores


"""caption.metrics against pycocoevalcap, nltk and sacrebleu themselves: equal to the last bit,
on caption-metrics' fixture corpora and on random corpora generated here."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import sacrebleu as real_sacrebleu
from nltk.translate import bleu_score as real_nltk
from pycocoevalcap.bleu.bleu import Bleu as RealBleu
from pycocoevalcap.cider.cider import Cider as RealCider
from pycocoevalcap.rouge.rouge import Rouge as RealRouge
from sacrebleu.metrics import BLEU as RealBLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

import caption.metrics.nltk as nltk
import caption.metrics.sacrebleu as sacrebleu
from caption import CaptionError, _native
from caption.metrics import Bleu, Cider, Rouge, TrainingCiderD

WORDS = "a dog the man on in runs red ball two of grass water is with".split()
PUNCTUATED = WORDS + ["dog.", "3.5", "1,000", "(red)", "it's", "well-known", "&amp;", "e-mail", "x-2", "\"hi\"", "5-4"]
SPACES = [" ", " ", " ", " ", "  ", "\t", "\u001f", "\u00a0"]


def sentence(rng: random.Random, words: list[str], odd_spaces: bool) -> str:
    tokens = [rng.choice(words) for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 12, 16]))]
    if not odd_spaces:
        return " ".join(tokens)
    return "".join(t + rng.choice(SPACES) for t in tokens).rstrip(" ") if tokens else rng.choice(["", " "])


def random_corpus(seed: int, odd_spaces: bool = False, words: list[str] = WORDS) -> tuple[dict, dict]:
    """pycocoevalcap's gts and res for a random corpus (some hypotheses empty, 1-5 references)."""
    rng = random.Random(seed)
    images = rng.randint(1, 40)
    gts, res = {}, {}
    for image in range(images):
        key = f"img{image}" if seed % 2 else image
        gts[key] = [sentence(rng, words, odd_spaces) or "a" for _ in range(rng.randint(1, 5))]
        res[key] = [sentence(rng, words, odd_spaces)]
    return gts, res


def fixture_corpora(cases: list[dict]) -> list[tuple[dict, dict]]:
    return [({i: refs for i, refs in enumerate(c["refs"])}, {i: [h] for i, h in enumerate(c["hyps"])}) for c in cases]


def pycoco_corpora(metric_cases: list[dict]) -> list[tuple[dict, dict]]:
    corpora = fixture_corpora(metric_cases)
    corpora += [random_corpus(seed) for seed in range(150)]
    corpora += [random_corpus(seed, odd_spaces=True) for seed in range(150, 250)]
    return corpora


def test_bleu_equals_pycocoevalcap_with_its_printout(metric_cases: list[dict], capsys: pytest.CaptureFixture) -> None:
    for gts, res in pycoco_corpora(metric_cases):
        for n in (1, 2, 4):
            mine = Bleu(n).compute_score(gts, res)
            printed = capsys.readouterr().out
            theirs = RealBleu(n).compute_score(gts, res)
            assert mine == theirs, (gts, res, n)
            assert printed == capsys.readouterr().out
            assert type(mine) is tuple and type(mine[0][0]) is float
    assert Bleu().compute_score({1: ["a b"]}, {1: ["a b"]}, verbose=0) == RealBleu().compute_score(
        {1: ["a b"]}, {1: ["a b"]}, verbose=0
    )
    assert capsys.readouterr().out == ""


def test_cider_and_rouge_equal_pycocoevalcap(metric_cases: list[dict]) -> None:
    for gts, res in pycoco_corpora(metric_cases):
        if any(ref.split() for refs in gts.values() for ref in refs):
            mine, theirs = Cider().compute_score(gts, res), RealCider().compute_score(gts, res)
            assert type(mine[0]) is type(theirs[0]) and mine[0] == theirs[0], (gts, res)
            assert mine[1].dtype == theirs[1].dtype and np.array_equal(mine[1], theirs[1])
        mine, theirs = Rouge().compute_score(gts, res), RealRouge().compute_score(gts, res)
        assert type(mine[0]) is type(theirs[0]) and mine[0] == theirs[0], (gts, res)
        assert np.array_equal(mine[1], theirs[1])
    gts, res = random_corpus(3)
    assert Rouge().calc_score(res[next(iter(res))], gts[next(iter(gts))]) == RealRouge().calc_score(
        res[next(iter(res))], gts[next(iter(gts))]
    )


def test_pycocoevalcaps_checks_are_kept() -> None:
    for scorer in (Bleu(), Cider(), Rouge()):
        with pytest.raises(AssertionError):
            scorer.compute_score({1: ["a"]}, {2: ["a"]})  # other keys
        with pytest.raises(AssertionError):
            scorer.compute_score({1: ["a"]}, {1: ["a", "b"]})  # two hypotheses
        with pytest.raises(AssertionError):
            scorer.compute_score({1: []}, {1: ["a"]})  # no reference
    with pytest.raises(ImportError, match="Java"):
        from caption.metrics import Meteor  # noqa: F401


def nltk_corpora(metric_cases: list[dict]) -> list[tuple[list, list]]:
    corpora = [([[r.split() for r in refs] for refs in c["refs"]], [h.split() for h in c["hyps"]]) for c in metric_cases]
    for seed in range(100):
        gts, res = random_corpus(seed)
        corpora.append(([[r.split() for r in gts[k]] for k in gts], [res[k][0].split() for k in gts]))
    return corpora


def test_nltk_bleu_equals_nltk(metric_cases: list[dict]) -> None:
    weights_list = [(0.25, 0.25, 0.25, 0.25), (0.5, 0.5), [(0.5, 0.5), (0.1, 0.3, 0.5, 0.1), (1 / 3,) * 3], (0.2,) * 5]
    mine_smoothing, their_smoothing = nltk.SmoothingFunction(), real_nltk.SmoothingFunction()
    tuned = (nltk.SmoothingFunction(epsilon=0.2, alpha=3, k=2), real_nltk.SmoothingFunction(epsilon=0.2, alpha=3, k=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for refs, hyps in nltk_corpora(metric_cases):
            for method in range(8):
                name = f"method{method}"
                for mine_owner, their_owner in ((mine_smoothing, their_smoothing), tuned):
                    for weights in weights_list:
                        try:
                            theirs = real_nltk.corpus_bleu(refs, hyps, weights, getattr(their_owner, name))
                        except (AssertionError, IndexError, ValueError, ZeroDivisionError):  # method 6 refuses some inputs
                            with pytest.raises(CaptionError):
                                nltk.corpus_bleu(refs, hyps, weights, getattr(mine_owner, name))
                            continue
                        mine = nltk.corpus_bleu(refs, hyps, weights, getattr(mine_owner, name))
                        assert mine == theirs, (refs, hyps, name, weights)
                        # nltk's own SmoothingFunction works as well as ours.
                        assert nltk.corpus_bleu(refs, hyps, weights, getattr(their_owner, name)) == theirs
            for hyp, ref in zip(hyps, refs):
                if ref:
                    assert nltk.sentence_bleu(ref, hyp) == real_nltk.sentence_bleu(ref, hyp)
            short = [h[:3] for h in hyps]
            assert nltk.corpus_bleu(refs, short, auto_reweigh=True) == real_nltk.corpus_bleu(refs, short, auto_reweigh=True)


@pytest.mark.filterwarnings("ignore::UserWarning")  # nltk warns of zero n-gram counts
def test_nltk_tokens_need_not_be_strings() -> None:
    refs, hyps = [[[1, 2, 3, 4, 5]], [["a", 2, (3, 4)]]], [[1, 2, 3, 9], ["a", 2, (3, 4)]]
    assert nltk.corpus_bleu(refs, hyps) == real_nltk.corpus_bleu(refs, hyps)
    with pytest.raises(TypeError, match="custom function"):
        nltk.corpus_bleu(refs, hyps, smoothing_function=lambda p_n, **kwargs: p_n)


def test_sacrebleus_13a_tokenizer() -> None:
    rng = random.Random(7)
    alphabet = list("ab cD.,-0123456789&;'\"()!?/:@[]{}~`$%^*_+=<>\n\tÉß€") + ["&amp;", "&quot;", "<skipped>", "-\n"]
    tokenizer = Tokenizer13a()
    for _ in range(3000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert _native.sacrebleu_tokenize(line) == tokenizer(line), repr(line)


def sacrebleu_corpora() -> list[tuple[list[str], list[list]]]:
    corpora = []
    rng = random.Random(11)
    for seed in range(120):
        gts, res = random_corpus(seed, words=PUNCTUATED)
        hyps = [res[k][0].capitalize() for k in gts]
        streams = max(len(r) for r in gts.values())
        refs = [[gts[k][s] if s < len(gts[k]) else None for k in gts] for s in range(streams)]
        if rng.random() < 0.3:  # some streams with an empty reference
            refs[0][0] = ""
        corpora.append((hyps, refs))
    return corpora


def test_sacrebleu_equals_sacrebleu() -> None:
    settings = [
        {},
        {"smooth_method": "none"},
        {"smooth_method": "floor", "smooth_value": 0.2},
        {"smooth_method": "add-k"},
        {"lowercase": True},
        {"tokenize": "none", "use_effective_order": True},
    ]
    for hyps, refs in sacrebleu_corpora():
        for options in settings:
            mine = sacrebleu.corpus_bleu(hyps, refs, **options)
            theirs = real_sacrebleu.corpus_bleu(hyps, refs, **options)
            assert (mine.score, mine.bp, mine.precisions) == (theirs.score, theirs.bp, theirs.precisions), options
            assert (mine.counts, mine.totals, mine.sys_len, mine.ref_len) == (
                list(theirs.counts),
                list(theirs.totals),
                theirs.sys_len,
                theirs.ref_len,
            )
            assert str(mine) == str(theirs)
            metric = RealBLEU(
                lowercase=options.get("lowercase", False),
                tokenize=options.get("tokenize", "13a"),
                smooth_method=options.get("smooth_method", "exp"),
                smooth_value=options.get("smooth_value"),
                effective_order=options.get("use_effective_order", False),
            )
            metric.corpus_score(hyps, refs)
            assert mine.signature == str(metric.get_signature()), options
        for hyp, *_ in zip(hyps, *refs):
            references = [stream[hyps.index(hyp)] for stream in refs if stream[hyps.index(hyp)] is not None]
            assert str(sacrebleu.sentence_bleu(hyp, references)) == str(real_sacrebleu.sentence_bleu(hyp, references))
    with pytest.raises(CaptionError, match="tokenize"):
        sacrebleu.corpus_bleu(["a"], [["a"]], tokenize="zh")


def test_training_cider_is_pycocoevalcaps_cider_when_training_on_the_scored_references() -> None:
    for seed in range(60):
        gts, res = random_corpus(seed)
        if not any(ref.split() for refs in gts.values() for ref in refs):
            continue
        scorer = TrainingCiderD(gts)
        assert scorer.images == len(gts)
        mine, theirs = scorer.compute_score(gts, res), RealCider().compute_score(gts, res)
        assert np.allclose(mine[1], theirs[1], rtol=0, atol=1e-12), (gts, res)
        listed = [{"image_id": k, "caption": res[k]} for k in gts]  # self-critical.pytorch's form
        assert np.array_equal(scorer.compute_score(gts, listed)[1], mine[1])
        first = next(iter(gts))
        assert scorer.score(res[first][0], gts[first]) == mine[1][0]

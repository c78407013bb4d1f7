"""sacrebleu 2.6's BLEU (``sacrebleu.corpus_bleu`` / ``sentence_bleu``), computed in Rust with its
``13a`` tokenizer (the default) or none::

    import caption.metrics.sacrebleu as sacrebleu
    bleu = sacrebleu.corpus_bleu(hypotheses, [references])   # references: streams, one per reference
    print(bleu.score, bleu)                                  # BLEU = 41.25 ...
"""

from __future__ import annotations

from typing import Optional, Sequence

from .. import _native

__all__ = ["BLEUScore", "corpus_bleu", "sentence_bleu"]

_SMOOTHINGS = ("none", "floor", "add-k", "exp")


class BLEUScore:
    """What sacrebleu's ``BLEUScore`` holds; ``str()`` formats it as sacrebleu does, and
    ``signature`` is what sacrebleu's ``BLEU(...).get_signature()`` prints."""

    name = "BLEU"

    def __init__(
        self,
        score: float,
        counts: list[float],
        totals: list[float],
        precisions: list[float],
        bp: float,
        sys_len: int,
        ref_len: int,
        signature: str,
        formatted: str,
    ) -> None:
        self.score = score
        self.counts = counts
        self.totals = totals
        self.precisions = precisions
        self.bp = bp
        self.sys_len = sys_len
        self.ref_len = ref_len
        self.signature = signature
        self._formatted = formatted

    def __str__(self) -> str:
        return self._formatted

    def __repr__(self) -> str:
        return self._formatted


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[Optional[str]]],
    smooth_method: str = "exp",
    smooth_value: Optional[float] = None,
    force: bool = False,
    lowercase: bool = False,
    tokenize: str = "13a",
    use_effective_order: bool = False,
) -> BLEUScore:
    """sacrebleu's ``corpus_bleu``: ``references`` is a list of reference streams, each with one
    reference (or ``None``) per hypothesis. ``tokenize``: ``"13a"`` or ``"none"``. ``force``
    only silences sacrebleu's warning about tokenized input and changes nothing here."""
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence) or not hypotheses:
        raise TypeError("BLEU: `hyps` should be a sequence of strings.")
    if smooth_method not in _SMOOTHINGS:
        raise AssertionError(f"Unknown smooth_method {smooth_method!r}")
    smoothing = smooth_method if smooth_value is None or smooth_method in ("none", "exp") else f"{smooth_method}:{smooth_value}"
    streams = [list(stream) for stream in references]
    score, counts_found, totals_found, precisions, bp, sys_len, ref_len, signature, formatted = _native.sacrebleu_corpus(
        list(hypotheses), streams, smoothing, lowercase, tokenize, use_effective_order
    )
    counts: list[float] = list(counts_found)
    totals: list[float] = list(totals_found)
    if smooth_method == "add-k" and any(counts):
        # sacrebleu's BLEUScore shows add-k's counts and totals with k added, order 2 on, up to
        # the first order without n-grams.
        k = 1 if smooth_value is None else smooth_value
        for n in range(1, len(counts) + 1):
            if n > 1:
                counts[n - 1] += k
                totals[n - 1] += k
            if totals[n - 1] == 0:
                break
    return BLEUScore(score, counts, totals, precisions, bp, sys_len, ref_len, signature, formatted)


def sentence_bleu(
    hypothesis: str,
    references: Sequence[str],
    smooth_method: str = "exp",
    smooth_value: Optional[float] = None,
    lowercase: bool = False,
    tokenize: str = "13a",
    use_effective_order: bool = True,
) -> BLEUScore:
    """sacrebleu's ``sentence_bleu``: one hypothesis against its references."""
    return corpus_bleu(
        [hypothesis],
        [[reference] for reference in references],
        smooth_method=smooth_method,
        smooth_value=smooth_value,
        lowercase=lowercase,
        tokenize=tokenize,
        use_effective_order=use_effective_order,
    )

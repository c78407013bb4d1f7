"""nltk's BLEU (``nltk.translate.bleu_score``), computed in Rust with nltk's arithmetic (its
``Fraction`` precisions, ``math.fsum``, each smoothing method)::

    from caption.metrics.nltk import SmoothingFunction, corpus_bleu, sentence_bleu
    corpus_bleu([[ref_a, ref_b]], [hyp], smoothing_function=SmoothingFunction().method1)

Tokens are strings (other hashable tokens are numbered first). ``smoothing_function`` is one of
``SmoothingFunction().method0`` .. ``method7``, this module's or nltk's own; a function of your
own cannot run in Rust (use nltk for it).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Optional, Sequence, Union

from .. import _native

__all__ = ["SmoothingFunction", "corpus_bleu", "sentence_bleu"]

Weights = Union[Sequence[float], Sequence[Sequence[float]]]


def _named_method(number: int) -> Callable[..., Any]:
    """A smoothing method as a name: ``corpus_bleu`` reads which one it is and runs it in Rust."""

    def method(self: "SmoothingFunction", *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"method{number} runs inside caption.metrics.nltk.corpus_bleu: pass it there")

    method.__name__ = method.__qualname__ = f"method{number}"
    return method


class SmoothingFunction:
    """nltk's smoothing methods of Chen and Cherry (2014), by name: pass
    ``SmoothingFunction(epsilon, alpha, k).methodN`` as ``smoothing_function``."""

    def __init__(self, epsilon: float = 0.1, alpha: float = 5, k: float = 5) -> None:
        self.epsilon = epsilon
        self.alpha = alpha
        self.k = k

    method0 = _named_method(0)
    method1 = _named_method(1)
    method2 = _named_method(2)
    method3 = _named_method(3)
    method4 = _named_method(4)
    method5 = _named_method(5)
    method6 = _named_method(6)
    method7 = _named_method(7)


def _smoothing(function: Optional[Callable[..., Any]]) -> tuple[int, float, float, float]:
    """The method number and parameters of ``SmoothingFunction(...).methodN`` (this module's or
    nltk's)."""
    if not function:
        return 0, 0.1, 5.0, 5.0
    name = getattr(function, "__name__", "")
    owner = getattr(function, "__self__", None)
    if (
        owner is not None
        and name.startswith("method")
        and name[6:].isdigit()
        and int(name[6:]) <= 7
        and all(hasattr(owner, p) for p in ("epsilon", "alpha", "k"))
    ):
        return int(name[6:]), float(owner.epsilon), float(owner.alpha), float(owner.k)
    raise TypeError(
        f"smoothing_function {function!r}: caption.metrics.nltk runs SmoothingFunction().method0 .. method7; "
        "a custom function needs nltk itself"
    )


def _as_strings(
    list_of_references: Sequence[Sequence[Sequence[Hashable]]], hypotheses: Sequence[Sequence[Hashable]]
) -> tuple[list[list[list[str]]], list[list[str]]]:
    """Tokens as strings: strings kept, any other hashable numbered by first appearance."""
    if all(isinstance(t, str) for h in hypotheses for t in h) and all(
        isinstance(t, str) for refs in list_of_references for r in refs for t in r
    ):
        return [[list(r) for r in refs] for refs in list_of_references], [list(h) for h in hypotheses]  # type: ignore[arg-type]
    ids: dict[Hashable, str] = {}

    def name(token: Hashable) -> str:
        return ids.setdefault(token, f"\x00{len(ids)}")

    return (
        [[[name(t) for t in r] for r in refs] for refs in list_of_references],
        [[name(t) for t in h] for h in hypotheses],
    )


def _weights(weights: Weights) -> tuple[list[Any], bool]:
    """nltk's rule: one weight vector, or a list of them (then a list of scores)."""
    try:
        weights[0][0]  # type: ignore[index]
    except (TypeError, IndexError):
        return [weights], False
    return list(weights), True


def corpus_bleu(
    list_of_references: Sequence[Sequence[Sequence[Hashable]]],
    hypotheses: Sequence[Sequence[Hashable]],
    weights: Weights = (0.25, 0.25, 0.25, 0.25),
    smoothing_function: Optional[Callable[..., Any]] = None,
    auto_reweigh: bool = False,
) -> Union[float, list[float]]:
    """nltk's ``corpus_bleu``: n-gram statistics summed over the corpus, then combined."""
    assert len(list_of_references) == len(hypotheses), (
        "The number of hypotheses and their reference(s) should be the same "
    )
    vectors, many = _weights(weights)
    method, epsilon, alpha, k = _smoothing(smoothing_function)
    # nltk re-weighs only the tuple (0.25, 0.25, 0.25, 0.25), not an equal list.
    reweigh = auto_reweigh and any(type(w) is tuple and w == (0.25,) * 4 for w in vectors)
    references, hyps = _as_strings(list_of_references, hypotheses)
    scores = _native.nltk_bleu(references, hyps, [list(w) for w in vectors], method, epsilon, alpha, k, reweigh, False)[0]
    return scores if many else scores[0]


def sentence_bleu(
    references: Sequence[Sequence[Hashable]],
    hypothesis: Sequence[Hashable],
    weights: Weights = (0.25, 0.25, 0.25, 0.25),
    smoothing_function: Optional[Callable[..., Any]] = None,
    auto_reweigh: bool = False,
) -> Union[float, list[float]]:
    """nltk's ``sentence_bleu``: ``corpus_bleu([references], [hypothesis], ...)``."""
    return corpus_bleu([references], [hypothesis], weights, smoothing_function, auto_reweigh)

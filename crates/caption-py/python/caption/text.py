"""The text side: spaCy 3.8's English tokenizer rules, token for token (``tokenize``), the
caption vocabulary of the PyTorch tutorials (``Vocabulary``, a Hugging Face ``tokenizer.json``),
and ``detokenize``."""

from __future__ import annotations

from typing import Iterable

from ._native import Vocabulary, detokenize, tokenize, tokenize_batch

__all__ = ["Vocabulary", "build_vocabulary", "detokenize", "tokenize", "tokenize_batch"]


def build_vocabulary(captions: Iterable[str], threshold: int = 5, ordering: str = "original") -> Vocabulary:
    """The tutorial's ``Vocabulary.build_vocabulary``: each caption tokenized and lowercased, then
    every word that reaches ``threshold`` occurrences gets the next id (``ordering="frequency"``:
    most frequent first)."""
    return Vocabulary.build(tokenize_batch(list(captions), lower=True), threshold, ordering)

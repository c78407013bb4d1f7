"""caption.text against spaCy itself on the Flickr8k captions, and the tutorial's vocabulary."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import spacy

from caption import CaptionError
from caption.text import Vocabulary, build_vocabulary, detokenize, tokenize, tokenize_batch

from conftest import FLICKR8K


@pytest.fixture(scope="session")
def flickr8k_captions() -> list[str]:
    with open(FLICKR8K / "captions.txt", newline="", encoding="utf-8") as file:
        return [row["caption"] for row in csv.DictReader(file)]


def test_tokens_equal_spacys_on_every_flickr8k_caption(flickr8k_captions: list[str]) -> None:
    nlp = spacy.blank("en")
    assert len(flickr8k_captions) == 40455
    mine = tokenize_batch(flickr8k_captions)
    lowered = tokenize_batch(flickr8k_captions, lower=True)
    for caption, tokens, lower in zip(flickr8k_captions, mine, lowered):
        spacy_tokens = [t.text for t in nlp.tokenizer(caption)]
        assert tokens == spacy_tokens, caption
        assert lower == [t.lower() for t in spacy_tokens]
    hard = ["Don't stop!", "U.S.A. e-mail me@x.com at 5:30pm...", "  two  spaces\tand\ttabs ", "ünïcödé—dash", ""]
    for text in hard:
        assert tokenize(text) == [t.text for t in nlp.tokenizer(text)], text


def tutorial_vocabulary(captions: list[str], threshold: int) -> dict[str, int]:
    """The PyTorch tutorial's Vocabulary.build_vocabulary, with spaCy's tokenizer."""
    nlp = spacy.blank("en")
    stoi = {"<PAD>": 0, "<SOS>": 1, "<EOS>": 2, "<UNK>": 3}
    frequencies: Counter = Counter()
    index = 4
    for sentence in captions:
        for word in [tok.text.lower() for tok in nlp.tokenizer(sentence)]:
            frequencies[word] += 1
            if frequencies[word] == threshold:
                stoi[word] = index
                index += 1
    return stoi


def test_vocabulary_equals_the_tutorials(flickr8k_captions: list[str], tmp_path: Path) -> None:
    captions = flickr8k_captions[:5000]
    vocabulary = build_vocabulary(captions, threshold=5)
    expected = tutorial_vocabulary(captions, 5)
    assert {word: i for i, word in enumerate(vocabulary.words)} == expected
    assert len(vocabulary) == len(expected) and "dog" in vocabulary
    ids = vocabulary.numericalize(tokenize("A dog zzzqx.", lower=True))
    assert ids == [1, expected["a"], expected["dog"], 3, expected["."], 2]
    assert vocabulary.decode(ids) == ["a", "dog", "<UNK>", "."]
    saved = tmp_path / "tokenizer.json"
    vocabulary.save(saved)
    assert Vocabulary.load(saved).words == vocabulary.words
    with pytest.raises(CaptionError, match="threshold"):
        build_vocabulary(captions, threshold=0)
    with pytest.raises(CaptionError, match="ordering"):
        build_vocabulary(captions, ordering="alphabetical")
    with pytest.raises(CaptionError, match=str(tmp_path / "missing.json")):
        Vocabulary.load(tmp_path / "missing.json")


def test_detokenize_writes_words_as_a_person_does() -> None:
    assert detokenize(["a", "dog", "'s", "ball", "."]) == "a dog's ball."
    assert detokenize(["two", "dogs", ",", "one", "cat", "!"]) == "two dogs, one cat!"
    assert detokenize([]) == ""

"""Type stubs of the native module (the Rust half); use the package's Python modules."""

from os import PathLike
from typing import Optional, Sequence, Union

__version__: str

class CaptionError(ValueError): ...

def coco_bleu(
    hypotheses: list[str], references: list[list[str]], n: int
) -> tuple[list[float], list[list[float]], int, int, list[int], list[int]]: ...
def coco_cider(hypotheses: list[str], references: list[list[str]], n: int, sigma: float) -> list[float]: ...
def coco_rouge(hypotheses: list[str], references: list[list[str]], beta: float) -> list[float]: ...
def nltk_bleu(
    references: list[list[list[str]]],
    hypotheses: list[list[str]],
    weights: list[list[float]],
    method: int,
    epsilon: float,
    alpha: float,
    k: float,
    auto_reweigh: bool,
    per_sentence: bool,
) -> list[list[float]]: ...
def sacrebleu_corpus(
    hypotheses: list[str],
    references: list[list[Optional[str]]],
    smoothing: str,
    lowercase: bool,
    tokenize: str,
    effective_order: bool,
) -> tuple[float, list[int], list[int], list[float], float, int, int, str, str]: ...
def sacrebleu_tokenize(line: str) -> str: ...

class TrainingCiderD:
    def __init__(self, references: list[list[str]], n: int = 4, sigma: float = 6.0) -> None: ...
    @property
    def images(self) -> int: ...
    def scores(self, hypotheses: list[str], references: list[list[str]]) -> list[float]: ...

def tokenize(text: str, lower: bool = False) -> list[str]: ...
def tokenize_batch(texts: list[str], lower: bool = False) -> list[list[str]]: ...
def detokenize(words: list[str]) -> str: ...

class Vocabulary:
    @staticmethod
    def build(captions: list[list[str]], threshold: int = 5, ordering: str = "original") -> "Vocabulary": ...
    @staticmethod
    def load(path: Union[str, PathLike[str]]) -> "Vocabulary": ...
    def save(self, path: Union[str, PathLike[str]]) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, word: str) -> bool: ...
    @property
    def words(self) -> list[str]: ...
    @property
    def threshold(self) -> int: ...
    def id(self, word: str) -> Optional[int]: ...
    def word(self, id: int) -> Optional[str]: ...
    def encode(self, words: list[str]) -> list[int]: ...
    def numericalize(self, words: list[str]) -> list[int]: ...
    def decode(self, ids: list[int]) -> list[str]: ...

Caption = tuple[list[str], str, float, bool, list[float], int]
Picture = Union[str, PathLike[str], tuple[int, int, bytes]]

class Captioner:
    architecture: str
    attention: bool
    vocabulary_size: int
    max_length: int
    source: str
    def __init__(
        self,
        path: Union[str, PathLike[str]],
        captions: Union[str, PathLike[str], None] = None,
        threshold: int = 5,
        device: str = "cpu",
    ) -> None: ...
    def caption(
        self,
        images: Sequence[Picture],
        *,
        beam: Optional[int] = None,
        length_penalty: Optional[float] = None,
        num_captions: Optional[int] = None,
        max_length: Optional[int] = None,
        sample: Optional[int] = None,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
    ) -> list[list[Caption]]: ...

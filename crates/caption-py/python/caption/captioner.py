"""``Captioner``: captions for image files, PIL images or numpy arrays, as ``cargo xtask caption``
gives them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _native

Image = Union[str, "os.PathLike[str]", np.ndarray, Any]
"""A path, a ``PIL.Image.Image`` or a ``uint8`` array (height x width, x 3 or x 4 channels)."""


@dataclass(frozen=True)
class Caption:
    """One caption of one image."""

    text: str
    """The caption as a person writes it (``"a dog's ball."``), as ``caption`` prints it."""
    tokens: list[str]
    """The model's words."""
    log_prob: float
    """Summed log-probability of the chosen words (``<EOS>`` included when chosen)."""
    finished: bool
    """Whether the caption ended with ``<EOS>`` rather than at the longest length."""
    attention: Optional[np.ndarray]
    """An attention model's weights: one ``cells x cells`` grid per word (``None`` otherwise)."""


class Captioner:
    """A trained model and its vocabulary.

    ``Captioner("runs/demo")`` loads a run (its best checkpoint), a checkpoint folder or an export;
    ``Captioner("my_checkpoint.pth.tar", captions="captions.txt")`` the PyTorch original's
    checkpoint with the captions file its vocabulary was built from (``threshold`` as it used).
    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        *,
        captions: Union[str, "os.PathLike[str]", None] = None,
        threshold: int = 5,
        device: str = "cpu",
    ) -> None:
        self._model = _native.Captioner(
            os.fspath(path), None if captions is None else os.fspath(captions), threshold, device
        )

    @property
    def architecture(self) -> str:
        """The model's architecture (``cnn-rnn`` or ``show-attend-tell``)."""
        return self._model.architecture

    @property
    def attention(self) -> bool:
        """Whether the decoder attends over the image (captions then carry weights)."""
        return self._model.attention

    @property
    def vocabulary_size(self) -> int:
        """Ids in the vocabulary, specials included."""
        return self._model.vocabulary_size

    @property
    def max_length(self) -> int:
        """The model's longest caption, in tokens (the default ``max_length``)."""
        return self._model.max_length

    def __repr__(self) -> str:
        return f"Captioner({self._model.source!r}, {self.architecture}, {self.vocabulary_size} ids)"

    def captions(
        self,
        images: Sequence[Image],
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
    ) -> list[list[Caption]]:
        """Per image, its captions: greedy decoding by default; ``beam=K`` beam search;
        ``num_captions=N`` the N best of the beam; ``sample=N`` N captions drawn (``temperature``,
        ``top_k``, ``top_p``; image ``i`` draws from ``seed + i``, as ``caption --seed``). The
        same rules and messages as ``cargo xtask caption``'s flags."""
        if isinstance(images, (str, os.PathLike, np.ndarray)) or _is_pil(images):
            raise TypeError("captions() takes a list of images; caption() takes one")
        pictures = [_picture(image) for image in images]
        answers = self._model.caption(
            pictures,
            beam=beam,
            length_penalty=length_penalty,
            num_captions=num_captions,
            max_length=max_length,
            sample=sample,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return [[_caption(answer) for answer in per_image] for per_image in answers]

    def caption(self, image: Image, **options: Any) -> Caption:
        """The first caption of one image (options as :meth:`captions`)."""
        return self.captions([image], **options)[0][0]


def _is_pil(image: Any) -> bool:
    return hasattr(image, "convert") and hasattr(image, "size") and hasattr(image, "mode")


def _picture(image: Image) -> Union[str, tuple[int, int, bytes]]:
    """A path as a string, or pixels as (width, height, RGB bytes)."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    array = np.asarray(image.convert("RGB") if _is_pil(image) else image)  # type: ignore[union-attr]
    if array.dtype != np.uint8:
        raise TypeError(f"pixels must be uint8 (0 to 255), not {array.dtype}")
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[:, :, :3]
    else:
        raise ValueError(f"an image array is height x width (x 3 or 4 channels), not {array.shape}")
    height, width = array.shape[:2]
    return (width, height, np.ascontiguousarray(array).tobytes())


def _caption(answer: tuple[list[str], str, float, bool, list[float], int]) -> Caption:
    tokens, text, log_prob, finished, weights, cells = answer
    attention = None
    if cells:
        attention = np.asarray(weights, dtype=np.float32).reshape(len(tokens), cells, cells)
    return Caption(text=text, tokens=tokens, log_prob=log_prob, finished=finished, attention=attention)

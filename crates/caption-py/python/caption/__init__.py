"""caption: image captioning in Rust, from Python.

- ``caption.metrics``: pycocoevalcap's ``Bleu``, ``Cider`` and ``Rouge`` (change one import line),
  ``caption.metrics.nltk`` (``corpus_bleu``, ``sentence_bleu``, ``SmoothingFunction``) and
  ``caption.metrics.sacrebleu`` (``corpus_bleu``, ``sentence_bleu``), each equal to its library,
  and ``TrainingCiderD`` (CIDEr-D with a training corpus's document frequencies).
- ``caption.text``: spaCy's English tokenizer rules (``tokenize``, ``tokenize_batch``), the
  caption ``Vocabulary``, ``detokenize``.
- ``caption.Captioner``: a trained run, checkpoint, export or the PyTorch original's checkpoint,
  captioning image files, PIL images or numpy arrays.

Errors are ``caption.CaptionError`` (a ``ValueError``) with the command line's messages.
"""

from ._native import CaptionError, __version__
from .captioner import Caption, Captioner

__all__ = ["Caption", "CaptionError", "Captioner", "__version__"]

"""The PyTorch original's model classes (the captioning tutorial users start from), verbatim except
that the encoder takes torchvision's `weights=None` instead of the removed `pretrained=True`.

Their one copy in this repository is the script `cargo xtask export --pytorch` writes next to an
exported model (crates/caption-infer/src/export/caption.py); this module loads the classes from it
for the fixture generators and benchmark scripts in tools/.
"""

import importlib.util
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "crates" / "caption-infer" / "src" / "export" / "caption.py"
_spec = importlib.util.spec_from_file_location("caption_export_script", _SCRIPT)
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)

EncoderCNN = _script.EncoderCNN
DecoderRNN = _script.DecoderRNN
CNNtoRNN = _script.CNNtoRNN

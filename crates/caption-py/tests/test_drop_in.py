"""An evaluation script written for pycocoevalcap runs unchanged but for its imports, with the
same output, on the shared COCO sample."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import SHARED

SCRIPT = Path(__file__).parent / "scripts" / "evaluate_coco.py"
IMPORTS = {
    "from pycocoevalcap.bleu.bleu import Bleu": "from caption.metrics import Bleu",
    "from pycocoevalcap.cider.cider import Cider": "from caption.metrics import Cider",
    "from pycocoevalcap.rouge.rouge import Rouge": "from caption.metrics import Rouge",
}


def test_a_pycocoevalcap_script_gives_the_same_output_with_caption_metrics(tmp_path: Path) -> None:
    annotations = SHARED / "data" / "coco" / "captions_val2017.json"
    by_image: dict[int, list[str]] = {}
    for annotation in json.loads(annotations.read_text())["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation["caption"])
    images = sorted(by_image)
    # Each image's "model caption": a neighbour's caption for some, a cut own caption for others.
    results = [
        {"image_id": image, "caption": by_image[images[(i + 1) % len(images)]][0] if i % 3 == 0 else by_image[image][i % 5][:-9]}
        for i, image in enumerate(images)
    ]
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(results))
    changed = SCRIPT.read_text()
    for original, replacement in IMPORTS.items():
        assert original in changed
        changed = changed.replace(original, replacement)
    changed_script = tmp_path / "evaluate_coco.py"
    changed_script.write_text(changed)

    def run(script: Path) -> str:
        done = subprocess.run([sys.executable, str(script), str(annotations), str(results_file)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    original_output = run(SCRIPT)
    assert "CIDEr: " in original_output and "ratio:" in original_output
    assert run(changed_script) == original_output

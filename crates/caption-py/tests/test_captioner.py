"""caption.Captioner against `cargo xtask caption --json` on the same models and images."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caption import CaptionError, Captioner

from conftest import FLICKR8K, ROOT, xtask, xtask_binary


def cli_captions(run: Path, images: list[Path], *flags: object) -> list[list[dict]]:
    """`caption --json` of `images`: per image its captions (one, or its `captions` list)."""
    out = xtask("caption", "--device", "cpu", "--json", "--checkpoint", run, *flags, *images)
    answers = [json.loads(line) for line in out.splitlines()]
    return [answer.get("captions", [answer]) for answer in answers]


def same(mine: list, theirs: list[dict]) -> None:
    assert len(mine) == len(theirs)
    for caption, expected in zip(mine, theirs):
        assert caption.text == expected["caption"]
        assert caption.tokens == expected["tokens"]
        assert caption.finished == expected["finished"]
        assert math.isclose(caption.log_prob, expected["log_prob"], rel_tol=0, abs_tol=1e-5)


OPTIONS = [
    ({}, []),
    ({"beam": 3}, ["--beam", 3]),
    ({"beam": 3, "length_penalty": 0.7}, ["--beam", 3, "--length-penalty", 0.7]),
    ({"num_captions": 2}, ["--num-captions", 2]),
    ({"sample": 3, "seed": 5, "temperature": 0.8}, ["--sample", 3, "--seed", 5, "--temperature", 0.8]),
    ({"sample": 2, "top_k": 3}, ["--sample", 2, "--top-k", 3]),
    ({"max_length": 4}, ["--max-length", 4]),
]


def test_captions_equal_the_caption_commands(lstm_run: Path, shapes: Path) -> None:
    images = sorted((shapes / "images").glob("*.png"))[:3] + sorted((FLICKR8K / "images").glob("*.jpg"))[:4]
    captioner = Captioner(lstm_run)
    assert (captioner.architecture, captioner.attention) == ("CNNtoRNN", False)
    for options, flags in OPTIONS:
        mine = captioner.captions(images, **options)
        theirs = cli_captions(lstm_run, images, *flags)
        for per_image_mine, per_image_theirs in zip(mine, theirs):
            same(per_image_mine, per_image_theirs)
            assert all(c.attention is None for c in per_image_mine)
    assert captioner.caption(images[0]) == captioner.captions([images[0]])[0][0]


def test_pil_images_and_arrays_caption_as_their_files(lstm_run: Path, shapes: Path) -> None:
    captioner = Captioner(lstm_run)
    path = sorted((shapes / "images").glob("*.png"))[0]
    from_file = captioner.caption(path, beam=2)
    picture = Image.open(path)
    assert captioner.caption(picture, beam=2) == from_file
    pixels = np.asarray(picture.convert("RGB"))
    assert captioner.caption(pixels, beam=2) == from_file
    rgba = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert captioner.caption(rgba, beam=2) == from_file
    with pytest.raises(TypeError, match="uint8"):
        captioner.caption(pixels.astype(np.float32))
    with pytest.raises(ValueError, match="height x width"):
        captioner.caption(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="list of images"):
        captioner.captions(path)


def test_errors_carry_the_command_lines_messages(lstm_run: Path, tmp_path: Path) -> None:
    captioner = Captioner(lstm_run)
    cut = tmp_path / "cut.jpg"
    whole = sorted((FLICKR8K / "images").glob("*.jpg"))[0].read_bytes()
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CaptionError) as refused:
        captioner.caption(cut)
    command = [xtask_binary(), "caption", "--device", "cpu", "--checkpoint", lstm_run, cut]
    done = subprocess.run(command, capture_output=True, text=True)
    problem = str(refused.value).split(": ", 1)[1]
    assert problem in done.stderr, (str(refused.value), done.stderr)
    refusals = [
        ({"beam": 0}, "beam 0"),
        ({"temperature": 0.5}, "add sample"),
        ({"num_captions": 4, "beam": 2}, "widen the beam"),
        ({"sample": 2, "beam": 3}, "one or the other"),
        ({"max_length": 1}, "max_length 1"),
    ]
    for options, words in refusals:
        with pytest.raises(CaptionError, match=words):
            captioner.caption(cut, **options)
    with pytest.raises(CaptionError, match="no-such-run"):
        Captioner(tmp_path / "no-such-run")
    with pytest.raises(CaptionError, match="device"):
        Captioner(lstm_run, device="tpu")


def test_errors_carry_no_backtrace_even_with_rust_backtrace_set(tmp_path: Path) -> None:
    # The original's checkpoint in caption-model's fixtures holds the decoder only: loading it
    # for captioning fails inside candle, which captures a backtrace when RUST_BACKTRACE is set.
    checkpoint = ROOT / "crates" / "caption-model" / "tests" / "fixtures" / "original_checkpoint.pth.tar"
    captions = tmp_path / "captions.txt"
    captions.write_text("image,caption\n" + "".join(f"{i}.jpg,word{i}\n" for i in range(26)) * 5)
    script = (
        "from caption import Captioner, CaptionError\n"
        f"try:\n    Captioner({str(checkpoint)!r}, captions={str(captions)!r})\n"
        "except CaptionError as error:\n    print(error)\n"
    )
    env = {**os.environ, "RUST_BACKTRACE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "cannot find tensor encoderCNN.inception" in done.stdout
    assert done.stdout.count("\n") == 1 and "candle_core" not in done.stdout, done.stdout


def test_an_attention_model_gives_its_weights(attention_run: Path, shapes: Path) -> None:
    captioner = Captioner(attention_run)
    assert captioner.attention
    images = sorted((shapes / "images").glob("*.png"))[:2]
    mine = captioner.captions(images, max_length=5)
    theirs = cli_captions(attention_run, images, "--max-length", 5)
    for per_image_mine, per_image_theirs in zip(mine, theirs):
        same(per_image_mine, per_image_theirs)
        caption = per_image_mine[0]
        assert caption.attention is not None and caption.attention.shape[0] == len(caption.tokens)
        assert caption.attention.shape[1] == caption.attention.shape[2] >= 1  # 1 x 1 at 75 px
        assert np.allclose(caption.attention.sum(axis=(1, 2)), 1.0, atol=1e-4)

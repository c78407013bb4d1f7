"""Which cut-short JPEGs Pillow refuses: the fixture of caption-data's truncated-JPEG check.

Writes small JPEGs (baseline, progressive, optimised, with restart markers, grayscale, with an
EXIF thumbnail inside) to crates/caption-data/tests/fixtures/jpeg/, then cuts each at many
lengths and records whether Pillow decodes the cut file (`Image.open(...).load()`, with
`ImageFile.LOAD_TRUNCATED_IMAGES` off as by default) or refuses it. caption-data must agree case
for case (tests/jpeg_truncation.rs).

    tools/.venv/bin/python tools/data/generate_truncated_jpeg_fixture.py   # pillow==13.0.0 (requirements-torch.txt)
"""

import io
import json
import pathlib

from PIL import Image, ImageFile

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/caption-data/tests/fixtures/jpeg"


def picture(mode="RGB", size=(64, 48)):
    image = Image.new("RGB", size)
    pixels = image.load()
    for x in range(size[0]):
        for y in range(size[1]):
            pixels[x, y] = ((x * 4) % 256, (y * 5) % 256, (x * y) % 251)
    return image.convert(mode)


def encode(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def with_thumbnail():
    thumbnail = encode(picture(size=(16, 12)), quality=50)
    exif = Image.Exif()
    exif[0x010E] = "a picture with a thumbnail"
    body = bytes(exif.tobytes())
    # An APP1 segment holding a whole JPEG (its own SOI ... EOI), as cameras store thumbnails.
    segment = b"Exif\0\0" + body + thumbnail
    app1 = b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment
    main = encode(picture(), quality=90)
    return main[:2] + app1 + main[2:]


def pillow_reads(data):
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def main():
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    OUT.mkdir(parents=True, exist_ok=True)
    files = {
        "baseline.jpg": encode(picture(), quality=90),
        "progressive.jpg": encode(picture(), quality=85, progressive=True),
        "optimized.jpg": encode(picture(), quality=75, optimize=True),
        "restart.jpg": encode(picture(), quality=80, restart_marker_blocks=1),
        "gray.jpg": encode(picture("L"), quality=90),
        "thumbnail.jpg": with_thumbnail(),
    }
    cases = []
    for name, data in files.items():
        (OUT / name).write_bytes(data)
        cuts = sorted({len(data)} | {len(data) - k for k in (1, 2, 3, 5, 17)} | set(range(4, len(data), 97)))
        for cut in cuts:
            cases.append({"file": name, "length": cut, "pillow_reads": pillow_reads(data[:cut])})
        trailer = data + b"camera trailer"
        cases.append({"file": name, "length": len(data), "trailer": True, "pillow_reads": pillow_reads(trailer)})
    (OUT / "cases.json").write_text(json.dumps({"pillow": Image.__version__, "cases": cases}, indent=0) + "\n")
    refused = sum(not c["pillow_reads"] for c in cases)
    print(f"{len(cases)} cases, {refused} refused by Pillow {Image.__version__}")


if __name__ == "__main__":
    main()

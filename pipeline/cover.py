"""The show's cover art, drawn in code: a silicon wafer of cores with the show's name.

3000 x 3000 pixels, RGB JPEG, as Apple Podcasts asks. ``make cover`` draws it again into
``assets/cover.jpg``. Pillow's bundled font is used, so no font package is needed.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from pipeline.errors import PipelineError
from pipeline.files import input_file

SIZE = 3000
MIN_SIDE, MAX_SIDE = 1400, 3000  # Apple Podcasts' bounds for show and episode art
TITLE = "Life is Artificial"
BACKGROUND = (12, 16, 32)
CORE = (40, 120, 200)
LIT = (120, 220, 255)
CHIP = (255, 170, 40)


ICONS = {"favicon.png": 64, "apple-touch-icon.png": 180}
"""The site's icons, made from the cover: file name -> side in pixels."""


def icons(cover: Path) -> dict[str, bytes]:
    """The site's icons (``ICONS``) as PNG bytes, scaled down from ``cover``."""
    made = {}
    with Image.open(cover) as art:
        art = art.convert("RGB")
        for name, side in ICONS.items():
            out = io.BytesIO()
            art.resize((side, side), Image.Resampling.LANCZOS).save(out, "PNG", optimize=True)
            made[name] = out.getvalue()
    return made


def draw_cover(title: str = TITLE, seed: int = 1) -> Image.Image:
    """The cover: a wafer of glowing cores, one chip-sized square lit, and the title."""
    rng = random.Random(seed)  # a fixed seed: the same cover every time
    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    centre, radius = SIZE / 2, SIZE * 0.42
    draw.ellipse(
        (centre - radius, centre - radius - 250, centre + radius, centre + radius - 250),
        fill=(22, 30, 58),
    )
    cell = 60
    half = 7  # the lit chip: a square of cells around the centre
    for row in range(-25, 26):
        for col in range(-25, 26):
            x, y = centre + col * cell, centre - 250 + row * cell
            if math.hypot(x - centre, y - centre + 250) > radius - cell:
                continue
            in_chip = abs(row) <= half and abs(col) <= half
            colour = CHIP if in_chip else (LIT if rng.random() < 0.12 else CORE)
            draw.rounded_rectangle((x - 24, y - 24, x + 24, y + 24), radius=6, fill=colour)
    glow = image.filter(ImageFilter.GaussianBlur(18))
    image = Image.blend(image, glow, 0.35)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=260)
    box = draw.textbbox((0, 0), title, font=font)
    width = box[2] - box[0]
    draw.rectangle((0, SIZE - 640, SIZE, SIZE - 140), fill=BACKGROUND)
    draw.text(((SIZE - width) / 2, SIZE - 600), title, font=font, fill=(245, 245, 250))
    small = ImageFont.load_default(size=110)
    tagline = "deep dives into the machines behind AI"
    box = draw.textbbox((0, 0), tagline, font=small)
    draw.text(((SIZE - (box[2] - box[0])) / 2, SIZE - 290), tagline, font=small, fill=LIT)
    return image


def check_cover(path: Path, named_at: tuple[Path, int | None]) -> str:
    """Check that ``path`` is cover art a podcast app takes, by decoding it: a JPEG or PNG,
    square, 1400 to 3000 pixels a side. Returns its MIME type."""
    input_file(path, "cover art", named_at=named_at, hint="run 'make cover', or fix the path")
    where, line = named_at
    try:
        with Image.open(path, formats=["JPEG", "PNG"]) as image:
            kind, (width, height) = image.format, image.size
            image.load()  # decode it all: a damaged file fails here, not in a podcast app
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PipelineError(
            f"cover art {path} is not a readable JPEG or PNG picture ({exc})",
            path=where,
            line=line,
            hint="export the cover as a JPEG or PNG, 1400 to 3000 pixels square",
        ) from None
    if width != height or not MIN_SIDE <= width <= MAX_SIDE:
        raise PipelineError(
            f"cover art {path} is {width}x{height} pixels; podcast apps take a square of "
            f"{MIN_SIDE} to {MAX_SIDE} pixels",
            path=where,
            line=line,
            hint="resize it to a square between 1400x1400 and 3000x3000 ('make cover' draws one)",
        )
    return "image/png" if kind == "PNG" else "image/jpeg"


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.cover [OUT]``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.cover", description=__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=Path("assets/cover.jpg"))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    draw_cover().save(args.out, "JPEG", quality=70, optimize=True, progressive=True)
    print(f"wrote {args.out} ({SIZE}x{SIZE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The figures as report.html embeds them: a lighter copy of each figure's PNG.

figures/NAME.png stays as drawn (150 dpi, full colour) next to its SVG; report.html
embeds a copy two thirds that size (100 dpi: as wide as the page shows it) reduced to a
palette of 32 colours (Pillow's fast octree, without dithering). The figures are drawn
in a few flat colours with anti-aliased edges, so the copy looks the same on screen at a
fraction of the bytes (the 75 figures of CD008625: 14.5 MB of PNG, 2.1 MB embedded).
Pillow does the scaling, the palette and the PNG encoding.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

#: the embedded copy's size relative to figures/NAME.png (150 dpi -> 100 dpi)
SCALE = 2 / 3
#: colours of the embedded copy's palette
COLOURS = 32


def light_png(png: Path | bytes) -> bytes:
    """The embedded copy of a figure's PNG (a file or its bytes)."""
    source = io.BytesIO(png) if isinstance(png, bytes) else png
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    width = max(1, round(rgb.width * SCALE))
    height = max(1, round(rgb.height * SCALE))
    small = rgb.resize((width, height), Image.Resampling.BOX)
    palette = small.quantize(COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", compress_level=6)
    return out.getvalue()

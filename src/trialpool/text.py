"""Text from untrusted sources made safe to write into Markdown (and the HTML rendered
from it), and bounded: one place for the escaping and shortening that every stage uses
(imports' package README, the report, the corpus summary). It imports nothing of
trialpool.
"""

from __future__ import annotations

import html
import re

#: the longest piece of text written (characters); a longer one is cut with an ellipsis
MAX_TEXT_CHARS = 20_000

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
_SPACES = re.compile(r"\s+")


def shorten(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` on one line (runs of white space as one space), cut at ``limit``
    characters with an ellipsis (only the first few times ``limit`` characters are read)."""
    text = _SPACES.sub(" ", str(text)[: 4 * limit + 4])
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def md_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Text safe in Markdown: HTML-escaped, Markdown specials escaped, one line, at most
    ``limit`` characters of it."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(shorten(text, limit), quote=False))


__all__ = ["MAX_TEXT_CHARS", "md_text", "shorten"]

"""Text from untrusted sources made safe to write into Markdown (and the HTML rendered
from it): one place for the escaping that every stage uses (imports' package README, the
report). No stage-specific logic lives here; it imports nothing of trialpool.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_text(text: str) -> str:
    """Text safe in Markdown: HTML-escaped, Markdown specials escaped, one line."""
    text = re.sub(r"\s+", " ", str(text))
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


__all__ = ["md_text"]

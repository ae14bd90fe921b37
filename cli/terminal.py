"""What the CLI prints carries the model's text (strategies, drafts, error messages), which
a page or PDF the user added may have steered: it must not reach the terminal as control
codes (issue 18: OSC 52 writes the clipboard, CSI rewrites the screen)."""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, and the C1 controls (ESC's 8-bit forms).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# json.dumps escapes C0 itself; DEL and C1 it passes through as they are.
_UNESCAPED_IN_JSON = re.compile("[\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without control characters (tab and newline kept)."""
    return _CONTROLS.sub("", text)


def json_line(data: Any) -> str:
    """One JSON object, UTF-8 as is, every control character escaped (same data)."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    return _UNESCAPED_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)

"""SubRip subtitles (``.srt``), read with webvtt-py.

Zoom and other tools export SRT with the speaker at the start of the cue text
(``Sarah Jones: Hello.``).  Handled exactly like WebVTT (:mod:`.vtt`):
consecutive cues of one speaker merge into one turn with its start and end
times.
"""

from __future__ import annotations

from .base import Document
from .vtt import _read


def read(data: bytes, name: str) -> Document:
    """Read an SRT file."""
    return _read(data, name, "srt")

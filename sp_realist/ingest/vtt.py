"""WebVTT captions (``.vtt``) from Microsoft Teams and Zoom, read with webvtt-py.

* Teams writes the speaker as a voice tag: ``<v Sarah Jones>Hello.</v>``.
* Zoom writes it at the start of the cue text: ``Sarah Jones: Hello.``

Consecutive cues of one speaker are merged into one turn.  The stored text has
one line per turn, ``Speaker: what was said`` (cue texts joined by a space,
cue tags removed), turns separated by a blank line; each turn is a segment
with its speaker and the start time of its first cue and end time of its last
cue (seconds).  Cues without a speaker each become a ``cue`` segment.
"""

from __future__ import annotations

import io
import re
from typing import Iterable, Mapping

from ..errors import IngestError
from ..sources import Segment
from .base import Document, clean_label, decode_bytes
from .text import map_speakers

_ZOOM_LABEL = re.compile(r"^(?P<label>[^\W\d_][^:\n]{0,39}?):[ \t]+(?P<rest>\S.*)$", re.DOTALL)


def read(data: bytes, name: str) -> Document:
    """Read a WebVTT file."""
    return _read(data, name, "vtt")


def _read(data: bytes, name: str, fmt: str) -> Document:
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    text, _enc = decode_bytes(data, name)
    what = "WebVTT" if fmt == "vtt" else "SubRip (SRT)"
    try:
        captions = webvtt.from_buffer(io.StringIO(text), format=fmt).captions
    except (MalformedFileError, MalformedCaptionError) as exc:
        raise IngestError(f"{name}: not a valid {what} caption file ({exc}); check that it is the right file.") from None
    except Exception as exc:  # the parser may fail in other ways on junk
        raise IngestError(f"{name}: not a valid {what} caption file ({type(exc).__name__}); check that it is the right file.") from None
    return from_captions(captions, fmt, name)


def caption_speaker(caption) -> tuple[str | None, str]:
    """``(speaker, text)`` of one cue: the voice tag, else a Zoom-style ``Name:`` label."""
    body = " ".join(line.strip() for line in caption.text.split("\n") if line.strip())
    voice = caption.voice
    if voice:
        return clean_label(voice), body
    m = _ZOOM_LABEL.match(body)
    if m:
        label = clean_label(m.group("label"))
        if len(label.split()) <= 5 and not re.search(r"[.!?;,]", label):
            return label, m.group("rest").strip()
    return None, body


def from_captions(captions, fmt: str, name: str) -> Document:
    turns: list[list] = []  # [speaker, [texts], start, end]
    for cap in captions:
        speaker, body = caption_speaker(cap)
        if not body:
            continue
        start = cap.start_time.in_milliseconds() / 1000.0
        end = cap.end_time.in_milliseconds() / 1000.0
        if turns and speaker is not None and turns[-1][0] == speaker:
            turns[-1][1].append(body)
            turns[-1][3] = end
        else:
            turns.append([speaker, [body], start, end])
    if not turns:
        raise IngestError(f"{name}: the caption file has no cues with text; check that it is the right file.")
    parts: list[str] = []
    segments: list[Segment] = []
    pos = 0
    for i, (speaker, texts, start, end) in enumerate(turns):
        line = (f"{speaker}: " if speaker else "") + " ".join(texts)
        chunk = line + ("\n\n" if i + 1 < len(turns) else "\n")
        segments.append(Segment(pos, pos + len(chunk), kind="turn" if speaker else "cue", speaker=speaker,
                                start_time=start, end_time=end))
        parts.append(chunk)
        pos += len(chunk)
    return Document(text="".join(parts), blocks=[], format=fmt, segments=segments, transcript=True)


def map_caption_speakers(segments: list[Segment], speaker_map: Mapping[str, str] | None = None,
                         known_codes: Iterable[str] = (), participant: str | None = None) -> list[Segment]:
    """Set ``participant_code`` on caption turns (see :func:`.text.map_speakers`)."""
    mapping = map_speakers([s.speaker for s in segments if s.speaker], speaker_map, known_codes, participant)
    for s in segments:
        if s.speaker and s.speaker in mapping:
            s.participant_code = mapping[s.speaker]
    return segments

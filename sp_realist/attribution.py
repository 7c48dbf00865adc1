"""Which participant said a span: the participant side of :func:`sp_realist.sources.span_attributions`.

One rule for every participant count (``frequencies --measure participants``,
``framework --rows participants``, ``saturation``, ``suggest`` and the
report's saturation table), for the segment holding the span's start:

* its speaker maps to a participant: that participant;
* it has a speaker label that maps to no participant (an interviewer, a
  facilitator, an unnamed voice such as a carer): **no participant** -- the
  turn is never credited to the interviewee;
* no speaker (diary sections, paragraphs) or no segment: the source's
  participant (None when the source has none).

:class:`ParticipantAttributor` is a :class:`sp_realist.sources.SpanAttributor`
(same one-off load, same binary search), so its quote attributions and its
participants always agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Connection

from .sources import SpanAttributor


class ParticipantAttributor(SpanAttributor):
    """A :class:`SpanAttributor` that also answers *which participant* (id or code) said a position."""

    def participant_id(self, source_id: int, start: int) -> int | None:
        """The participant id behind ``start`` in ``source_id`` (see the module's rule); None for none."""
        seg = self.segment(source_id, start)
        if seg is not None:
            _a, _b, speaker, pid = seg
            if pid is not None:
                return pid
            if speaker and speaker.strip():
                return None  # an unmapped speaker's turn: nobody's, never the interviewee's
        return self._sources.get(source_id, (None, None, None))[2]

    def participant_code(self, source_id: int, start: int) -> str | None:
        """The participant code ("S1 DK1") behind ``start``, or None."""
        pid = self.participant_id(source_id, start)
        return self._codes.get(pid) if pid is not None else None

    def participant_ids(self, source_ids: Iterable[int], starts: Iterable[int]) -> list[int | None]:
        """:meth:`participant_id` of many positions (equal-length sequences)."""
        return [self.participant_id(int(s), int(p)) for s, p in zip(source_ids, starts)]

    def participant_codes(self, source_ids: Iterable[int], starts: Iterable[int]) -> list[str | None]:
        """:meth:`participant_code` of many positions (equal-length sequences)."""
        return [self.participant_code(int(s), int(p)) for s, p in zip(source_ids, starts)]


def span_participants(conn: Connection, spans: Iterable[tuple[int, int]]) -> dict[tuple[int, int], str | None]:
    """``(source_id, start) -> participant code or None`` for many spans at once (see the module's rule)."""
    spans = list(dict.fromkeys(spans))
    if not spans:
        return {}
    who = ParticipantAttributor(conn, {sid for sid, _ in spans})
    return {s: who.participant_code(*s) for s in spans}

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

    def many_with_participants(self, source_ids, starts):
        """For many positions at once (arrays of equal length), one binary search per source on numpy:
        ``(who, names, participant_ids, interviewer)``: the attribution (what :meth:`many` gives) as an
        int32 array of indexes into the list ``names``, an int32 array of what :meth:`participant_id` gives
        (-1 for none; ids are 32-bit in the schema) and a bool array of what :meth:`is_interviewer` gives."""
        import numpy as np

        from .sources import is_interviewer_label

        sids = np.asarray(source_ids)
        pos = np.asarray(starts)
        n = len(sids)
        who = np.zeros(n, dtype=np.int32)
        pids = np.full(n, -1, dtype=np.int32)
        asked = np.zeros(n, dtype=bool)
        index: dict[str, int] = {}
        if not n:
            return who, [], pids, asked
        interviewer: dict = {}
        for sid, idx in self._by_source(sids):
            fallback = index.setdefault(self._source_fallback(sid), len(index))
            own = self._sources.get(sid, (None, None, None))[2]
            own = -1 if own is None else own
            segs = self._segs.get(sid)
            if not segs:
                who[idx] = fallback
                pids[idx] = own
                continue
            seen: dict = {}  # (speaker, participant) -> (attribution, voiced, interviewer), once per source
            facts = []
            for seg in segs:
                key = (seg[2], seg[3])
                if key not in seen:
                    label = self._segment_label(sid, seg)
                    if seg[2] not in interviewer:
                        interviewer[seg[2]] = is_interviewer_label(seg[2], self.interviewers)
                    seen[key] = (fallback if label is None else index.setdefault(label, len(index)),
                                 bool(seg[2] and seg[2].strip()), seg[3] is None and interviewer[seg[2]])
                facts.append(seen[key])
            seg_who = np.array([f[0] for f in facts], dtype=np.int64)
            seg_pids = np.array([-1 if s[3] is None else s[3] for s in segs], dtype=np.int64)
            voiced = np.array([f[1] for f in facts], dtype=bool)
            seg_asked = np.array([f[2] for f in facts], dtype=bool)
            kk, inside = self._holding(sid, pos[idx])
            who[idx] = np.where(inside, seg_who[kk], fallback)
            seg_pid = seg_pids[kk]
            pids[idx] = np.where(inside & (seg_pid >= 0), seg_pid, np.where(inside & voiced[kk], -1, own))
            asked[idx] = inside & seg_asked[kk]
        return who, list(index), pids, asked


def span_participants(conn: Connection, spans: Iterable[tuple[int, int]]) -> dict[tuple[int, int], str | None]:
    """``(source_id, start) -> participant code or None`` for many spans at once (see the module's rule)."""
    spans = list(dict.fromkeys(spans))
    if not spans:
        return {}
    who = ParticipantAttributor(conn, {sid for sid, _ in spans})
    return {s: who.participant_code(*s) for s in spans}

"""Rule-based autocoding with spaCy (no model download: ``spacy.blank("en")``).

A rule belongs to a code and has one or more of

* ``keywords``: words, case-insensitive (``lemma: true`` matches every
  inflection through spaCy's English lookup lemmatizer table from
  ``spacy-lookups-data``: "refer" matches "referred", "referring");
* ``phrases``: multi-word phrases, case-insensitive (also with ``lemma``);
* ``pattern``: a spaCy ``Matcher`` token pattern (or a list of them), e.g.
  ``[{LOWER: brick}, {LOWER: wall}]``.

A rule with more than one of them (kind ``combined``) hits wherever any of
its keywords, phrases or patterns matches.

Every hit is expanded to the rule's ``unit`` (match, sentence, segment or
section; see :mod:`sp_realist.coding.units`) and becomes a coding with coder
``autocode`` and origin ``rule:<name>``.  Applying twice adds nothing the
second time; ``remove_rule_codings`` removes one rule's codings as a batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import pandas as pd
from sqlalchemy import and_, delete, insert, select
from sqlalchemy.engine import Connection

from .. import schema as S
from ..errors import NotFoundError, SpRealistError, did_you_mean
from ..sources import interviewer_speakers, is_interviewer_label, speaker_key
from ..store import Project, now
from ._common import UNITS, clean_name, code_labels, fetch_rows, resolve_code
from .codings import insert_plain_codings
from .units import SENT_ATTRS, SourceUnits, sentences

AUTOCODER = "autocode"
RULE_KINDS = ("keywords", "phrases", "pattern")
#: The kind of a rule that has more than one of RULE_KINDS; its spec is ``{"keywords": [...], "pattern": [...]}``.
COMBINED = "combined"
HIT_COLUMNS = ["rule", "code", "source", "start", "end", "match_start", "match_end", "matched", "context", "new"]


@lru_cache(maxsize=1)
def _blank():
    import spacy

    nlp = spacy.blank("en")
    nlp.max_length = 50_000_000
    return nlp


@lru_cache(maxsize=1)
def lemma_table():
    """spaCy's English lookup lemmatizer table (lower-case form -> lemma)."""
    try:
        from spacy.lookups import load_lookups

        return load_lookups("en", ["lemma_lookup"]).get_table("lemma_lookup")
    except (ValueError, ImportError):  # pragma: no cover - depends on installation
        raise SpRealistError(
            "Lemma rules need the spaCy lookup tables; install them with 'pip install spacy-lookups-data'.") from None


def _pattern_list(pattern: Any, where: str) -> list[list[dict]]:
    if isinstance(pattern, list) and pattern and all(isinstance(t, dict) for t in pattern):
        return [pattern]
    if isinstance(pattern, list) and pattern and all(
            isinstance(p, list) and p and all(isinstance(t, dict) for t in p) for p in pattern):
        return pattern
    raise SpRealistError(f"{where}: 'pattern' must be a spaCy Matcher token pattern such as "
                         "[{LOWER: brick}, {LOWER: wall}], or a list of them.")


def parse_rule(spec: Any, where: str = "rule") -> dict:
    """Validate a rule mapping from the codebook YAML; return name, kind, spec, unit, lemma."""
    if not isinstance(spec, dict):
        raise SpRealistError(f"{where}: a rule is a mapping with name and keywords, phrases or pattern.")
    allowed = {"name", "keywords", "phrases", "pattern", "unit", "lemma", "speakers", "exclude_speakers"}
    unknown = set(spec) - allowed
    if unknown:
        raise SpRealistError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(allowed))}.")
    name = clean_name(spec.get("name"), "rule")
    where = f"{where} ({name})"
    kinds = [k for k in RULE_KINDS if spec.get(k) is not None]
    if not kinds:
        raise SpRealistError(f"{where}: give keywords, phrases or pattern (or several of them).")
    unit = spec.get("unit", "sentence")
    if unit not in UNITS:
        raise SpRealistError(f"{where}: unit {unit!r} is not one of {', '.join(UNITS)}.")
    lemma = spec.get("lemma", False)
    if not isinstance(lemma, bool):
        raise SpRealistError(f"{where}: lemma must be true or false.")
    terms = {k: _check_terms(k, spec[k], where) for k in kinds}
    kind = kinds[0] if len(kinds) == 1 else COMBINED
    value = terms[kind] if kind != COMBINED else terms
    speakers = _speaker_list(spec.get("speakers"), "speakers", where)
    exclude = _speaker_list(spec.get("exclude_speakers"), "exclude_speakers", where)
    both = {speaker_key(x) for x in speakers or []} & {speaker_key(x) for x in exclude or []}
    if both:
        raise SpRealistError(f"{where}: speaker {sorted(both)[0]!r} is in both speakers and exclude_speakers; "
                             "keep it in one.")
    return {"name": name, "kind": kind, "spec": value, "unit": unit, "lemma": lemma,
            "speakers": speakers, "exclude_speakers": exclude}


def _check_terms(kind: str, value: Any, where: str) -> list:
    """A rule's keywords or phrases (a list of strings) or pattern (a list of Matcher patterns), validated."""
    if kind in ("keywords", "phrases"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, (str, int, float)) for v in value):
            raise SpRealistError(f"{where}: {kind} must be a non-empty list of words or phrases.")
        value = [" ".join(str(v).split()) for v in value]
        if any(not v for v in value):
            raise SpRealistError(f"{where}: {kind} contains an empty entry; remove it.")
        return value
    value = _pattern_list(value, where)
    from spacy.matcher import Matcher

    try:
        Matcher(_blank().vocab, validate=True).add("check", value)
    except (ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpRealistError(f"{where}: not a valid spaCy Matcher pattern ({first}); see spaCy's Matcher docs.") from None
    return value


def rule_terms(kind: str, spec: Any) -> dict[str, list]:
    """``{"keywords": [...], "phrases": [...], "pattern": [...]}`` (the parts the rule has) of a rule's spec."""
    return dict(spec) if kind == COMBINED else {kind: spec}


def _speaker_list(value: Any, key: str, where: str) -> list[str] | None:
    """A rule's ``speakers`` / ``exclude_speakers``: speaker labels or participant codes."""
    if value is None:
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value or not all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip() for v in value):
        raise SpRealistError(f"{where}: {key} must be a non-empty list of speaker labels or participant codes, "
                             "e.g. [Interviewer] or [S2 PM1].")
    return list(dict.fromkeys(" ".join(str(v).split()) for v in value))


def encode_spec(rule: dict) -> str:
    """The ``code_rules.spec`` JSON of a parsed rule: the keywords, phrases or pattern, or, when the
    rule names speakers or combines several kinds, ``{"<kind>": ..., "speakers": [...], "exclude_speakers": [...]}``
    (one key per kind for a combined rule)."""
    if rule["kind"] != COMBINED and not rule.get("speakers") and not rule.get("exclude_speakers"):
        return json.dumps(rule["spec"], ensure_ascii=False)
    data: dict[str, Any] = dict(rule_terms(rule["kind"], rule["spec"]))
    for key in ("speakers", "exclude_speakers"):
        if rule.get(key):
            data[key] = rule[key]
    return json.dumps(data, ensure_ascii=False)


def decode_spec(kind: str, text: str) -> tuple[Any, list[str] | None, list[str] | None]:
    """``(keywords/phrases/pattern, speakers, exclude_speakers)`` from ``code_rules.spec``."""
    data = json.loads(text)
    if kind == COMBINED:
        terms = {k: data[k] for k in RULE_KINDS if data.get(k) is not None}
        return terms, data.get("speakers") or None, data.get("exclude_speakers") or None
    if isinstance(data, dict):
        return data.get(kind), data.get("speakers") or None, data.get("exclude_speakers") or None
    return data, None, None


# --- rules in the project -------------------------------------------------------
def rules_frame(project: Project) -> pd.DataFrame:
    """Every autocoding rule: name, code, kind, spec (JSON), unit, lemma, speakers, exclude_speakers, codings made."""
    from sqlalchemy import func

    with project.connect() as conn:
        counts = dict(conn.execute(select(S.codings.c.origin, func.count()).where(S.codings.c.origin.like("rule:%"))
                                   .group_by(S.codings.c.origin)).all())
        rows = conn.execute(select(S.code_rules).order_by(S.code_rules.c.id)).mappings().all()
        labels = code_labels(conn)
    out = []
    for r in rows:
        value, speakers, exclude = decode_spec(r["kind"], r["spec"])
        plain = not (speakers or exclude) and r["kind"] != COMBINED  # stored as written; else the terms alone
        out.append({"name": r["name"], "code": labels[r["code_id"]], "kind": r["kind"],
                    "spec": r["spec"] if plain else json.dumps(value, ensure_ascii=False),
                    "unit": r["unit"], "lemma": bool(r["lemma"]),
                    "speakers": ", ".join(speakers) if speakers else None,
                    "exclude_speakers": ", ".join(exclude) if exclude else None,
                    "codings": counts.get(f"rule:{r['name']}", 0)})
    return pd.DataFrame(out, columns=["name", "code", "kind", "spec", "unit", "lemma", "speakers",
                                      "exclude_speakers", "codings"])


def add_rule(project: Project, code: str, name: str, keywords: list[str] | None = None,
             phrases: list[str] | None = None, pattern: list | None = None, unit: str = "sentence",
             lemma: bool = False, speakers: list[str] | None = None,
             exclude_speakers: list[str] | None = None) -> int:
    """Attach a new autocoding rule to ``code``; return its id.  ``speakers`` restricts it to the
    turns of those speakers (labels or participant codes); ``exclude_speakers`` skips theirs."""
    spec = {"name": name, "unit": unit, "lemma": lemma}
    for k, v in (("keywords", keywords), ("phrases", phrases), ("pattern", pattern),
                 ("speakers", speakers), ("exclude_speakers", exclude_speakers)):
        if v is not None:
            spec[k] = v
    rule = parse_rule(spec, f"rule {name!r}")
    with project.begin() as conn:
        crow = resolve_code(conn, code)
        if conn.execute(select(S.code_rules.c.id).where(S.code_rules.c.name == rule["name"])).first():
            raise SpRealistError(f"rule {rule['name']!r}: already exists; choose another name.")
        rid = conn.execute(insert(S.code_rules).values(
            code_id=crow["id"], name=rule["name"], kind=rule["kind"], spec=encode_spec(rule),
            unit=rule["unit"], lemma=rule["lemma"])).inserted_primary_key[0]
        project.log(conn, "rule.add", rule["name"], code=crow["name"])
    return rid


def remove_rule_codings(project: Project, name: str) -> int:
    """Remove every coding made by rule ``name`` (origin ``rule:<name>``); return how many."""
    name = " ".join(str(name).split())
    with project.begin() as conn:
        c = S.codings
        cond = c.c.origin == f"rule:{name}"
        known = conn.execute(select(S.code_rules.c.id).where(S.code_rules.c.name == name)).first()
        n_codings = conn.execute(select(c.c.id).where(cond).limit(1)).first()
        if not known and not n_codings:
            raise NotFoundError(f"No rule named {name!r} and no codings from it; see 'sp-realist autocode --dry-run'.")
        conn.execute(delete(S.memos).where(and_(S.memos.c.target_type == "coding",
                                                S.memos.c.target_id.in_(select(c.c.id).where(cond)))))
        n = conn.execute(delete(c).where(cond)).rowcount
        project.log(conn, "autocode.remove", name, removed=n)
    return n


def delete_rule(project: Project, name: str, codings: bool = False) -> int:
    """Delete a rule (and, with ``codings``, the codings it made); return codings removed."""
    n = remove_rule_codings(project, name) if codings else 0
    with project.begin() as conn:
        res = conn.execute(delete(S.code_rules).where(S.code_rules.c.name == " ".join(str(name).split())))
        if not res.rowcount:
            hint = did_you_mean(name, [r[0] for r in conn.execute(select(S.code_rules.c.name))],
                                "see 'sp-realist codebook rules'.")
            raise NotFoundError(f"No rule named {name!r}; {hint}")
        project.log(conn, "rule.delete", name, codings_removed=n)
    return n


# --- matching ----------------------------------------------------------------
class _Lemmatiser:
    """Sets ``token.lemma`` to the lookup lemma of the token's lower-case form (cached by hash)."""

    def __init__(self, vocab):
        self.table = lemma_table()
        self.strings = vocab.strings
        self.cache: dict[int, int] = {}

    def __call__(self, doc):
        cache = self.cache
        for tok in doc:
            low = tok.lower
            h = cache.get(low)
            if h is None:
                s = tok.lower_
                h = self.strings.add(self.table.get(s, s))
                cache[low] = h
            tok.lemma = h
        return doc


def _patterns_use_lemma(patterns: list[list[dict]]) -> bool:
    return any("LEMMA" in {k.upper() for k in tok} for pat in patterns for tok in pat)


class RuleSet:
    """Compiled matchers for a list of rule rows (name, kind, spec, unit, lemma, code_id)."""

    def __init__(self, rules: list[dict]):
        from spacy.matcher import Matcher, PhraseMatcher

        self.nlp = _blank()
        vocab = self.nlp.vocab
        self.rules = {r["name"]: r for r in rules}
        terms = {r["name"]: rule_terms(r["kind"], r["spec"]) for r in rules}
        self.need_lemma = any(r["lemma"] or _patterns_use_lemma(terms[r["name"]].get("pattern") or []) for r in rules)
        self.need_sentences = any(r["unit"] == "sentence" for r in rules)
        self.lemmatiser = _Lemmatiser(vocab) if self.need_lemma else None
        self.lower = PhraseMatcher(vocab, attr="LOWER")
        self.lemma = PhraseMatcher(vocab, attr="LEMMA")
        self.matcher = Matcher(vocab)
        self.ids: dict[int, str] = {}
        self.order = [r["name"] for r in rules]
        for r in rules:
            key = f"rule:{r['name']}"
            self.ids[vocab.strings.add(key)] = r["name"]
            parts = terms[r["name"]]
            if parts.get("pattern"):
                self.matcher.add(key, parts["pattern"])
            words = [w for k in ("keywords", "phrases") for w in parts.get(k) or []]
            if not words:
                continue
            docs = [self.nlp.make_doc(p) for p in words]
            if r["lemma"]:
                self.lemma.add(key, [self.lemmatiser(d) for d in docs])
            else:
                self.lower.add(key, docs)
        import numpy as np

        pos = {name: i for i, name in enumerate(self.order)}
        pairs = sorted((h, pos[name]) for h, name in self.ids.items())
        self.hashes = np.array([h for h, _ in pairs], dtype=np.uint64)
        self.rule_of_hash = np.array([i for _, i in pairs], dtype=np.int64)

    def docs(self, texts):
        for doc in self.nlp.tokenizer.pipe(texts, batch_size=64):
            if self.lemmatiser is not None:
                self.lemmatiser(doc)
            yield doc

    def matches(self, doc) -> list[tuple[str, int, int]]:
        """(rule name, start char, end char) for every hit in ``doc``."""
        ridx, ms, me = self.match_arrays(doc)
        return [(self.order[r], int(a), int(b)) for r, a, b in zip(ridx, ms, me)]

    def match_arrays(self, doc, arr=None):
        """Arrays (rule index into ``self.order``, start char, end char) of every hit, sorted.

        ``arr`` may pass ``doc.to_array(units.SENT_ATTRS)`` (columns 2 and 3 are IDX, LENGTH)."""
        import numpy as np

        parts = []
        for m in (self.lower, self.lemma, self.matcher):
            if len(m):
                res = m(doc)
                if res:
                    parts.append(np.array(res, dtype=np.uint64))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        hits = np.concatenate(parts)
        ridx = self.rule_of_hash[np.searchsorted(self.hashes, hits[:, 0])]
        if arr is None:
            arr = doc.to_array(list(SENT_ATTRS))
        tok = arr[:, 2:4].astype(np.int64)
        s = hits[:, 1].astype(np.int64)
        e = hits[:, 2].astype(np.int64) - 1
        ms = tok[s, 0]
        me = tok[e, 0] + tok[e, 1]
        order = np.lexsort((ridx, me, ms))
        return ridx[order], ms[order], me[order]


def _load_rules(conn: Connection, names: list[str] | None) -> list[dict]:
    q = select(S.code_rules).order_by(S.code_rules.c.id)
    rows = [dict(r) for r in conn.execute(q).mappings()]
    if names:
        wanted = [" ".join(n.split()) for n in names]
        known = {r["name"] for r in rows}
        missing = [n for n in wanted if n not in known]
        if missing:
            hint = did_you_mean(missing[0], known, "see 'sp-realist codebook rules'.")
            raise NotFoundError(f"No rule named {missing[0]!r} in the codebook; {hint}")
        rows = [r for r in rows if r["name"] in wanted]
    for r in rows:
        r["spec"], r["speakers"], r["exclude_speakers"] = decode_spec(r["kind"], r["spec"])
        r["lemma"] = bool(r["lemma"])
    return rows


def autocode(project: Project, dry_run: bool = False, rules: list[str] | None = None,
             progress: Callable[[int, int], None] | None = None, sources: list[str | int] | None = None,
             context: int | None = None, include_interviewer: bool = False,
             max_texts: int | None = None) -> pd.DataFrame:
    """Apply the codebook's rules to every source (or ``sources``).

    Hits in an interviewer's turn (a speaker in the project's
    ``interviewer_speakers`` setting, by default Interviewer, Facilitator,
    Moderator, Researcher, that maps to no participant) are skipped unless
    ``include_interviewer`` is given or the rule's ``speakers`` names that
    speaker.  A rule's ``speakers`` keeps only hits in those speakers' turns
    (by label or participant code); ``exclude_speakers`` drops hits in theirs.

    Returns one row per hit: rule, code, source, the unit span coded
    (``start``/``end``), the match span, the matched words, ``context`` (the
    words around the match, the match in [brackets]) and ``new`` (False when
    the coding already exists or another hit in this run already coded the
    same unit).  With ``dry_run`` nothing is written.  Idempotent: applying
    twice adds nothing.  ``progress(done, total)`` is called after each source.
    ``context`` is the number of characters shown either side of a match:
    60 for a dry run by default; when applying, the context column is left
    empty unless a width is given (it is for reviewing hits).
    ``max_texts`` keeps the matched words and context of only the first that
    many hits (the others get None in both columns), so that a caller that
    shows only counts or the first rows holds no text per hit: a dense rule
    set's millions of hits then cost their numbers, not their strings.
    :func:`autocode_summary` counts the hits as they are found instead, and
    holds no row per hit at all.
    """
    import numpy as np

    if context is None:
        context = 60 if dry_run else 0
    run = _prepare(project, rules, sources, include_interviewer)
    if run is None:
        return pd.DataFrame(columns=HIT_COLUMNS)
    cols: dict[str, list] = {k: [] for k in ("ridx", "src", "us", "ue", "ms", "me", "new")}
    matched: list[str] = []
    contexts: list[str] = []
    hits = 0
    for i, text, ridx, us, ue, ms, me, new in _source_hits(project, run, progress):
        for key, arr in (("ridx", ridx), ("us", us), ("ue", ue), ("ms", ms), ("me", me), ("new", new)):
            cols[key].append(arr)
        cols["src"].append(np.full(len(ridx), i, dtype=np.int64))
        room = len(ridx) if max_texts is None else max(0, min(len(ridx), max_texts - len(matched)))
        if room:
            ms_l, me_l = ms[:room].tolist(), me[:room].tolist()
            matched.extend(text[a:b] for a, b in zip(ms_l, me_l))
            if context:
                contexts.extend(_contexts(text, ms_l, me_l, context))
        hits += len(ridx)
    if not hits:
        return pd.DataFrame(columns=HIT_COLUMNS)
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    if len(matched) < hits:  # max_texts: the hits past it carry no text
        pad = [None] * (hits - len(matched))
        matched.extend(pad)
        if context:
            contexts.extend(pad)
    src_names = np.array([s[1] for s in run.srcs], dtype=object)[cat["src"]]
    df = pd.DataFrame({
        "rule": run.names[cat["ridx"]], "code": run.code_names[cat["ridx"]], "source": src_names,
        "start": cat["us"], "end": cat["ue"], "match_start": cat["ms"], "match_end": cat["me"],
        "matched": matched, "context": contexts if context else None, "new": cat["new"],
    }, columns=HIT_COLUMNS)
    if not dry_run:
        sel = np.flatnonzero(cat["new"])
        run.store(project, rules, cat["ridx"][sel], run.src_ids[cat["src"][sel]], cat["us"][sel], cat["ue"][sel],
                  hits)
    return df


@dataclass
class AutocodeSummary:
    """What :func:`autocode_summary` found: ``hits`` and ``new`` in all (``added``: codings stored when
    applying), the hits of each rule (``rules``, ``codes``: in the codebook's order; ``rule_hits``,
    ``rule_new``: their counts; ``first_at``: the position of each rule's first hit in the run, -1 for
    none) and ``first``, the first hits with every column of :func:`autocode`."""

    hits: int
    new: int
    added: int
    rules: list[str]
    codes: list[str]
    rule_hits: list[int]
    rule_new: list[int]
    first_at: list[int]
    first: pd.DataFrame

    def counts(self, by: str = "rule") -> pd.DataFrame:
        """The hits per rule or per code, as :func:`hit_counts` gives them for the hits table."""
        if by not in ("rule", "code"):
            raise SpRealistError(f"hit counts: by must be 'rule' or 'code', not {by!r}.")
        rows = sorted((at, r) for r, at in enumerate(self.first_at) if at >= 0)  # in order of first hit
        if by == "rule":
            out = pd.DataFrame([(self.rules[r], self.codes[r], self.rule_hits[r], self.rule_new[r]) for _at, r in rows],
                               columns=["rule", "code", "hits", "new"])
        else:
            per_code: dict[str, list[int]] = {}
            for _at, r in rows:
                c = per_code.setdefault(self.codes[r], [0, 0, 0])
                c[0] += 1
                c[1] += self.rule_hits[r]
                c[2] += self.rule_new[r]
            out = pd.DataFrame([(code, *v) for code, v in per_code.items()], columns=["code", "rules", "hits", "new"])
        out = out.astype({c: "int64" for c in out.columns if c in ("rules", "hits", "new")})
        return out.sort_values("hits", ascending=False, kind="stable").reset_index(drop=True)


def autocode_summary(project: Project, *, dry_run: bool = False, rules: list[str] | None = None,
                     sources: list[str | int] | None = None, progress: Callable[[int, int], None] | None = None,
                     include_interviewer: bool = False, first: int = 200,
                     context: int | None = None) -> AutocodeSummary:
    """:func:`autocode` that counts the hits as it finds them instead of returning one row per hit: the
    hits and new codings of each rule, and the first ``first`` hits in full (what a terminal shows).
    Applying (``dry_run=False``) stores exactly the codings :func:`autocode` stores; memory does not
    grow with the hits of a dry run, and while applying only by the new codings' numbers (40 bytes each)
    until they are written."""
    import numpy as np

    if context is None:
        context = 60 if dry_run else 0
    run = _prepare(project, rules, sources, include_interviewer)
    n_rules = len(run.names) if run is not None else 0
    rule_hits = np.zeros(n_rules, dtype=np.int64)
    rule_new = np.zeros(n_rules, dtype=np.int64)
    first_at = np.full(n_rules, -1, dtype=np.int64)
    shown: list[pd.DataFrame] = []
    keep: dict[str, list] = {k: [] for k in ("ridx", "src", "us", "ue")}
    hits = kept = 0
    if run is not None:
        for i, text, ridx, us, ue, ms, me, new in _source_hits(project, run, progress):
            rule_hits += np.bincount(ridx, minlength=n_rules)
            rule_new += np.bincount(ridx[new], minlength=n_rules)
            unseen = np.flatnonzero(first_at[ridx] < 0)
            if len(unseen):  # rules hit for the first time: where (their order in the counts)
                seen, at = np.unique(ridx[unseen], return_index=True)
                first_at[seen] = hits + unseen[at]
            if kept < first:
                k = min(len(ridx), first - kept)
                ms_l, me_l = ms[:k].tolist(), me[:k].tolist()
                shown.append(pd.DataFrame({
                    "rule": run.names[ridx[:k]], "code": run.code_names[ridx[:k]], "source": run.srcs[i][1],
                    "start": us[:k], "end": ue[:k], "match_start": ms[:k], "match_end": me[:k],
                    "matched": [text[a:b] for a, b in zip(ms_l, me_l)],
                    "context": _contexts(text, ms_l, me_l, context) if context else None, "new": new[:k]},
                    columns=HIT_COLUMNS))
                kept += k
            if not dry_run and new.any():
                keep["ridx"].append(ridx[new])
                keep["src"].append(np.full(int(new.sum()), run.src_ids[i], dtype=np.int64))
                keep["us"].append(us[new])
                keep["ue"].append(ue[new])
            hits += len(ridx)
    added = 0
    if run is not None and not dry_run and hits:
        cat = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in keep.items()}
        keep.clear()
        added = run.store(project, rules, cat["ridx"], cat["src"], cat["us"], cat["ue"], hits)
    first_frame = pd.concat(shown, ignore_index=True) if shown else pd.DataFrame(columns=HIT_COLUMNS)
    return AutocodeSummary(
        hits=hits, new=int(rule_new.sum()), added=added, rules=list(run.names) if run else [],
        codes=list(run.code_names) if run else [], rule_hits=rule_hits.tolist(), rule_new=rule_new.tolist(),
        first_at=first_at.tolist(), first=first_frame)


def hit_counts(hits: pd.DataFrame, by: str = "rule") -> pd.DataFrame:
    """Counts of an :func:`autocode` result per rule (``by="rule"``: rule, code, hits, new) or per code
    (``by="code"``: code, rules, hits, new), most hits first: the summary of a large run."""
    if by not in ("rule", "code"):
        raise SpRealistError(f"hit counts: by must be 'rule' or 'code', not {by!r}.")
    if by == "rule":
        out = hits.groupby(["rule", "code"], sort=False).agg(hits=("new", "size"), new=("new", "sum")).reset_index()
    else:
        out = hits.groupby("code", sort=False).agg(rules=("rule", "nunique"), hits=("new", "size"),
                                                   new=("new", "sum")).reset_index()
    out["new"] = out["new"].astype("int64")
    return out.sort_values("hits", ascending=False, kind="stable").reset_index(drop=True)


class _Run:
    """One autocoding run's rules, compiled matchers, sources and speaker filter (see :func:`_prepare`)."""

    def __init__(self, rule_rows, codes, srcs, pcodes, interviewers, include_interviewer):
        import numpy as np

        self.rule_rows = rule_rows
        self.ruleset = RuleSet(rule_rows)
        by_name = {r["name"]: r for r in rule_rows}
        order = self.ruleset.order
        self.speaker_filter = _SpeakerFilter([by_name[n] for n in order], interviewers, include_interviewer,
                                             pcodes)
        self.rule_unit = np.array([UNITS.index(by_name[n]["unit"]) for n in order])
        self.rule_code = np.array([by_name[n]["code_id"] for n in order], dtype=np.int64)
        self.code_ids = sorted({r["code_id"] for r in rule_rows})
        self.names = np.array(order, dtype=object)
        self.code_names = np.array([codes[c] for c in self.rule_code], dtype=object)
        self.srcs = srcs
        self.src_ids = np.array([s[0] for s in srcs], dtype=np.int64)

    def store(self, project: Project, rules, ridx, src_ids, us, ue, hits: int) -> int:
        """Store the new codings (rule indexes, source ids, unit spans) in one transaction, in the codings
        index's order, with the audit row; return how many were added."""
        import numpy as np
        from itertools import repeat

        code_ids = self.rule_code[ridx]
        order = np.lexsort((ue, us, src_ids, code_ids))
        origins = np.array([f"rule:{n}" for n in self.names], dtype=object)

        def rows(step: int = 50_000):  # tuples made a slice at a time: the whole list is never held
            at = now()
            for a in range(0, len(order), step):
                sel = order[a:a + step]
                yield from zip(code_ids[sel].tolist(), src_ids[sel].tolist(), us[sel].tolist(), ue[sel].tolist(),
                               repeat(AUTOCODER), origins[ridx[sel]].tolist(), repeat(at))

        with project.begin() as conn:
            n = insert_plain_codings(conn, rows(), code_ids=self.code_ids) if len(order) else 0
            project.log(conn, "autocode", ",".join(rules) if rules else "all rules", actor=AUTOCODER,
                        rules=len(self.rule_rows), hits=hits, added=n)
        project.refresh_statistics()  # on a server, the next query is planned for the new codings
        return n


def _prepare(project: Project, rules, sources, include_interviewer) -> _Run | None:
    """The run's rules, sources and settings read from the project; None when there are no rules."""
    from ..sources import resolve_source

    with project.connect() as conn:
        rule_rows = _load_rules(conn, rules)
        codes = code_labels(conn)
        q = select(S.sources.c.id, S.sources.c.name).order_by(S.sources.c.ingest_order)
        if sources:
            q = q.where(S.sources.c.id.in_([resolve_source(conn, s)["id"] for s in sources]))
        srcs = conn.execute(q).all()
        pcodes = dict(conn.execute(select(S.participants.c.id, S.participants.c.code)).all())
        interviewers = interviewer_speakers(conn)
    if not rule_rows:
        return None
    return _Run(rule_rows, codes, srcs, pcodes, interviewers, include_interviewer)


def _source_hits(project: Project, run: _Run, progress):
    """``(position of the source, text, rule indexes, unit starts, unit ends, match starts, match ends, new)``
    of each source with hits, the arrays sorted by match; ``new`` is False for a hit whose coding (code,
    source, unit) is already stored by autocode or made by an earlier hit of this run (a coding's key
    holds its source, so each source is checked on its own)."""
    import numpy as np

    ruleset, speaker_filter, rule_unit, rule_code = run.ruleset, run.speaker_filter, run.rule_unit, run.rule_code
    total = len(run.srcs)
    for i, _sid, text, src_segs, pids, doc, known in _stream_sources(
            project, ruleset, [s[0] for s in run.srcs], run.code_ids):
        attrs = doc.to_array(list(SENT_ATTRS)) if len(doc) else None
        ridx, ms, me = ruleset.match_arrays(doc, attrs)
        if len(ridx):
            keep = speaker_filter.keep(src_segs or [(0, len(text), None, "paragraph", None)],
                                       pids or [None], ridx, ms)
            if keep is not None:
                ridx, ms, me = ridx[keep], ms[keep], me[keep]
        if len(ridx):
            units = SourceUnits(text, src_segs or [(0, len(text), None, "paragraph")])
            if ruleset.need_sentences and (rule_unit[ridx] == UNITS.index("sentence")).any():
                units.set_sentences(sentences(doc, attrs, text))
            us, ue = ms.copy(), me.copy()
            kinds = rule_unit[ridx]
            for k in np.unique(kinds):
                mask = kinds == k
                us[mask], ue[mask] = units.expand_many(ms[mask], me[mask], UNITS[k])
            code_ids = rule_code[ridx]
            new = _first_of_each_key(code_ids, us, ue)
            if known:
                new &= np.fromiter(((c, a, b) not in known for c, a, b in zip(
                    code_ids.tolist(), us.tolist(), ue.tolist())), dtype=bool, count=len(ridx))
            yield i, text, ridx, us, ue, ms, me, new
        if progress is not None:
            progress(i + 1, total)


def _first_of_each_key(code_ids, us, ue):
    """A mask over the hits: True for the first hit (in their order) of each (code, start, end)."""
    import numpy as np

    order = np.lexsort((ue, us, code_ids))  # stable: equal keys keep the hits' order
    c, a, b = code_ids[order], us[order], ue[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (c[1:] != c[:-1]) | (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    out = np.zeros(len(order), dtype=bool)
    out[order[starts]] = True
    return out


#: Sources whose texts are read from the project at a time (memory stays flat in the corpus size).
STREAM_BATCH = 32


def _stream_sources(project: Project, ruleset: "RuleSet", source_ids: list[int], code_ids: list[int]):
    """``(position in source_ids, source id, text, segments, segment participant ids, doc, known)`` for each
    source in turn, reading texts, segments and the (code id, start, end) of its autocode codings of
    ``code_ids`` (``known``) from the project :data:`STREAM_BATCH` sources at a time, in one read snapshot."""
    seg = S.segments
    c = S.codings.c
    with project.connect() as conn:
        for i in range(0, len(source_ids), STREAM_BATCH):
            ids = source_ids[i:i + STREAM_BATCH]
            texts = dict(fetch_rows(conn, select(S.sources.c.id, S.sources.c.text).where(S.sources.c.id.in_(ids))))
            segs: dict[int, list[tuple]] = {}
            seg_pids: dict[int, list[int | None]] = {}
            for r in fetch_rows(conn, select(seg.c.source_id, seg.c.start, seg.c.end, seg.c.section, seg.c.kind,
                                             seg.c.speaker, seg.c.participant_id)
                                .where(seg.c.source_id.in_(ids)).order_by(seg.c.source_id, seg.c.ord)):
                segs.setdefault(r[0], []).append(tuple(r[1:6]))
                seg_pids.setdefault(r[0], []).append(r[6])
            known: dict[int, set[tuple[int, int, int]]] = {}
            for code_id, sid, start, end in fetch_rows(conn, select(c.code_id, c.source_id, c.start, c.end).where(
                    c.source_id.in_(ids), c.code_id.in_(code_ids), c.coder == AUTOCODER)):
                known.setdefault(sid, set()).add((code_id, start, end))
            here = [(i + k, sid) for k, sid in enumerate(ids) if sid in texts]  # (one deleted since: skipped)
            batch = [texts.pop(sid) for _k, sid in here]
            for (k, sid), text, doc in zip(here, batch, ruleset.docs(batch)):
                yield k, sid, text, segs.get(sid), seg_pids.get(sid), doc, known.get(sid)


class _SpeakerFilter:
    """Which hits to keep given the turn they fall in: interviewer turns are skipped (unless
    asked for), and each rule's ``speakers`` / ``exclude_speakers`` are applied."""

    def __init__(self, rules: list[dict], interviewers, include_interviewer: bool, pcodes: dict[int, str]):
        self.interviewers = tuple(interviewers)
        self.include_interviewer = include_interviewer
        self.pcodes = pcodes
        self.only = [{speaker_key(x) for x in r.get("speakers") or []} or None for r in rules]
        self.never = [{speaker_key(x) for x in r.get("exclude_speakers") or []} for r in rules]
        self.any_rule_filter = any(o is not None or n for o, n in zip(self.only, self.never))

    def keep(self, segments: list[tuple], pids: list[int | None], ridx, ms):
        """A boolean mask over the hits (``ridx`` rule indexes, ``ms`` match starts), or None to keep all."""
        import numpy as np

        labels = [speaker_key(seg[4]) for seg in segments]
        codes = [speaker_key(self.pcodes.get(p)) if p is not None else "" for p in pids]
        asked = [not self.include_interviewer and p is None and is_interviewer_label(seg[4], self.interviewers)
                 for seg, p in zip(segments, pids)]
        if not self.any_rule_filter and not any(asked):
            return None
        asked_arr = np.array(asked, dtype=bool)
        allowed = np.tile(~asked_arr, (len(self.only), 1))  # rule x segment
        for r, (only, never) in enumerate(zip(self.only, self.never)):
            if only is not None:
                named = np.array([lab in only or code in only for lab, code in zip(labels, codes)], dtype=bool)
                by_label = np.array([lab in only for lab in labels], dtype=bool)
                allowed[r] = named & (~asked_arr | by_label)
            if never:
                allowed[r] &= ~np.array([lab in never or code in never for lab, code in zip(labels, codes)],
                                        dtype=bool)
        starts = np.array([seg[0] for seg in segments], dtype=np.int64)
        k = np.maximum(np.searchsorted(starts, ms, side="right") - 1, 0)
        return allowed[ridx, k]


def _contexts(text: str, starts: list[int], ends: list[int], width: int) -> list[str]:
    """The words around each hit ``text[start:end]`` on one line, the hit in [brackets], ``width``
    characters either side (line breaks blanked once for the whole text)."""
    flat = text.replace("\r", " ").replace("\n", " ")
    n = len(text)
    out = []
    for start, end in zip(starts, ends):
        a = start - width if start > width else 0
        b = end + width if end + width < n else n
        out.append(f"{'…' if a > 0 else ''}{flat[a:start]}[{flat[start:end]}]{flat[end:b]}{'…' if b < n else ''}")
    return out

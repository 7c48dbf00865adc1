"""Pseudonym keys: loading, validation, hashing and appending.

A key maps real strings (names of clients, staff, surgeries, places) to
replacements (participant codes such as ``S1 DK1`` or placeholders such as
``[GP surgery]``).  It lives *outside* the project; the project stores only the
key's SHA-256 (:attr:`Key.sha256`).

YAML::

    secret: 3f9c0d...            # optional; see docs/privacy.md ("Reversal")
    entries:
      - {original: Sarah Jones, replacement: S1 DK1, variants: [Sarah, Ms Jones], name_parts: true}
      - {original: Riverside Surgery, replacement: "[GP surgery]"}
      - {original: Rose, replacement: "[client 1]", case_sensitive: true}

CSV: ``original,replacement,variants[,case_sensitive][,name_parts]`` with the
variants separated by ``;``.

Every check runs before anything is changed, and the messages name entries
by number and replacement, never by the original string, so an error message
pasted into an issue tracker or CI log leaks nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import SpRealistError

#: Titles dropped when ``name_parts`` derives first-name and surname variants.
TITLES = frozenset("mr mrs ms miss mx dr prof professor sir dame rev cllr".split())

ENTRY_FIELDS = {"original", "replacement", "variants", "case_sensitive", "name_parts"}
TRUE = {"1", "true", "yes", "y"}
FALSE = {"", "0", "false", "no", "n"}


def normalise_term(term: str) -> str:
    """Runs of white space collapsed to one space, ends stripped."""
    return " ".join(str(term).split())


@dataclass
class KeyEntry:
    """One real string, its replacement and the other forms it appears in."""

    original: str
    replacement: str
    variants: list[str] = field(default_factory=list)
    case_sensitive: bool = False
    number: int = 0  # 1-based position in the key file
    where: str = ""  # "line 7" / "row 3", for messages

    @property
    def terms(self) -> list[str]:
        """The original and its variants (what is searched for)."""
        return [self.original] + [v for v in self.variants if v != self.original]

    def label(self, replacement: bool = True) -> str:
        """How messages refer to the entry without revealing the original."""
        where = f" ({self.where})" if self.where else ""
        return f"entry {self.number}{where}" + (f" -> {self.replacement!r}" if replacement else "")


@dataclass
class Key:
    """A validated pseudonym key."""

    entries: list[KeyEntry]
    path: str | None = None
    secret: str | None = None

    def canonical(self) -> bytes:
        """A format-independent serialisation: the same key as YAML or CSV hashes the same."""
        data = {
            "entries": sorted(
                [e.original, e.replacement, sorted(set(e.variants) - {e.original}), bool(e.case_sensitive)]
                for e in self.entries
            ),
            "secret": self.secret,
        }
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def sha256(self) -> str:
        """The key's fingerprint: what the project stores (never the key itself)."""
        return hashlib.sha256(self.canonical()).hexdigest()

    @property
    def sealing_material(self) -> bytes:
        """Secret input for the reversal-record encryption key.

        With a ``secret`` the key file can grow (new entries from ``suggest``)
        and still reverse earlier runs; without one, the exact key is needed.
        """
        if self.secret:
            return b"secret\x00" + self.secret.encode("utf-8")
        return b"key\x00" + self.canonical()

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else "key"

    def __len__(self) -> int:
        return len(self.entries)


# --------------------------------------------------------------------------
# reading


def _as_bool(value: Any, where: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise SpRealistError(f"{where}: {name} must be true or false, not {value!r}; fix the key file.")


def _variants(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        parts = value.split(";")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise SpRealistError(f"{where}: variants must be a list of strings; fix the key file.")
    out = []
    for p in parts:
        if not isinstance(p, (str, int, float)):
            raise SpRealistError(f"{where}: variants must be a list of strings; fix the key file.")
        t = normalise_term(str(p))
        if t:
            out.append(t)
    return out


def name_part_variants(original: str) -> list[str]:
    """First name and surname of a person's name (titles such as "Dr" dropped)."""
    words = [w for w in original.split() if w.lower().rstrip(".") not in TITLES]
    if len(words) < 2:
        return []
    return [words[0], words[-1]]


def _entry(raw: Any, number: int, where: str, src: str) -> KeyEntry:
    loc = f"{src}: entry {number} ({where})"
    if not isinstance(raw, dict):
        raise SpRealistError(f"{loc}: each entry needs 'original' and 'replacement'; fix the key file.")
    unknown = set(raw) - ENTRY_FIELDS
    if unknown:
        raise SpRealistError(
            f"{loc}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
            f"allowed are {', '.join(sorted(ENTRY_FIELDS))}."
        )
    original = normalise_term(raw.get("original") or "")
    replacement = str(raw.get("replacement") if raw.get("replacement") is not None else "").strip()
    if not original:
        raise SpRealistError(f"{loc}: the original is empty; give the real string or delete the entry.")
    if not replacement:
        raise SpRealistError(
            f"{loc}: the replacement is empty; give a participant code or a placeholder such as [name]."
        )
    variants = _variants(raw.get("variants"), loc)
    if _as_bool(raw.get("name_parts"), loc, "name_parts"):
        variants += name_part_variants(original)
    seen, uniq = {original.lower()}, []
    for v in variants:
        if v.lower() not in seen:
            seen.add(v.lower())
            uniq.append(v)
    return KeyEntry(original, replacement, uniq, _as_bool(raw.get("case_sensitive"), loc, "case_sensitive"),
                    number, where)


def _yaml_lines(text: str) -> list[int]:
    """1-based line of each item of the top-level entries list (for messages)."""
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return []
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == "entries" and isinstance(v, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in v.value]
    if isinstance(node, yaml.SequenceNode):
        return [item.start_mark.line + 1 for item in node.value]
    return []


def parse_yaml_key(text: str, src: str = "key", allow_empty: bool = False) -> tuple[list[KeyEntry], str | None]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise SpRealistError(f"{src}: not valid YAML{at}; fix the key file.") from None
    secret = None
    if isinstance(data, dict):
        unknown = set(data) - {"entries", "secret"}
        if unknown:
            raise SpRealistError(
                f"{src}: unknown top-level field(s) {', '.join(sorted(map(str, unknown)))}; "
                "a key has 'entries' and optionally 'secret'."
            )
        secret = data.get("secret")
        if secret is not None:
            secret = str(secret)
            if len(secret) < 16:
                raise SpRealistError(f"{src}: the secret is shorter than 16 characters; use a long random string.")
        items = data.get("entries")
    else:
        items = data
    if allow_empty and items is None:
        return [], secret
    if not isinstance(items, list) or not items:
        raise SpRealistError(f"{src}: no entries; a key is a list of 'entries' with original and replacement.")
    lines = _yaml_lines(text)
    entries = [
        _entry(raw, i + 1, f"line {lines[i]}" if i < len(lines) else f"item {i + 1}", src)
        for i, raw in enumerate(items)
    ]
    return entries, secret


def parse_csv_key(text: str, src: str = "key", allow_empty: bool = False) -> list[KeyEntry]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"original", "replacement"} <= {f.strip() for f in reader.fieldnames if f}:
        raise SpRealistError(f"{src}: the header must have the columns original,replacement[,variants]; fix the key file.")
    entries = []
    for i, row in enumerate(reader):
        raw = {(k or "").strip(): v for k, v in row.items() if k is not None}
        if None in row:  # more cells than header columns
            raise SpRealistError(f"{src}: row {i + 2} has more cells than the header; quote values that contain commas.")
        if not any((v or "").strip() for v in raw.values()):
            continue  # blank line
        raw = {k: v for k, v in raw.items() if k}
        for flag in ("case_sensitive", "name_parts"):
            if flag in raw and not (raw[flag] or "").strip():
                raw.pop(flag)
        entries.append(_entry(raw, len(entries) + 1, f"line {reader.line_num}", src))
    if not entries and not allow_empty:
        raise SpRealistError(f"{src}: no entries; add rows of original,replacement.")
    return entries


def read_key_text(p: Path) -> str:
    """A key file's text: UTF-8 (with or without BOM), UTF-16 with a BOM, or Windows-1252, which is
    what Excel writes for "CSV (Comma delimited)".  The key's hash is over its entries, not its bytes."""
    data = p.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "cp1252")
    for enc in encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise SpRealistError(f"{p}: not readable text (UTF-8, UTF-16 with a byte-order mark or Windows-1252); "
                         "save the key file as UTF-8.")


def load_key(path: str | os.PathLike, matcher_check: bool = True, allow_empty: bool = False) -> Key:
    """Read and validate a key file (``.yaml``/``.yml``/``.csv``)."""
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise SpRealistError(f"{src}: no such key file; pass the path of your key.yaml or key.csv.")
    text = read_key_text(p)
    suffix = p.suffix.lower()
    secret = None
    if suffix == ".csv":
        entries = parse_csv_key(text, src, allow_empty)
    elif suffix in (".yaml", ".yml"):
        entries, secret = parse_yaml_key(text, src, allow_empty)
    else:
        raise SpRealistError(f"{src}: a key file must end in .yaml, .yml or .csv.")
    key = Key(entries, str(p), secret)
    return validate_key(key, src, matcher_check)


def key_from_entries(entries: Iterable[dict], secret: str | None = None, src: str = "key") -> Key:
    """Build and validate a key from dicts (the Python API's way to make one)."""
    parsed = [_entry(raw, i + 1, f"item {i + 1}", src) for i, raw in enumerate(entries)]
    if not parsed:
        raise SpRealistError(f"{src}: no entries; a key needs at least one original and replacement.")
    return validate_key(Key(parsed, None, secret), src)


def as_key(key: "Key | str | os.PathLike") -> Key:
    return key if isinstance(key, Key) else load_key(key)


# --------------------------------------------------------------------------
# validation


def validate_key(key: Key, src: str = "key", matcher_check: bool = True) -> Key:
    """Refuse conflicting duplicates and replacements that are themselves key entries.

    Duplicates with the *same* replacement are merged (their variants united).
    """
    from .detect import term_norm

    owner: dict[str, KeyEntry] = {}
    order: list[KeyEntry] = []
    for e in key.entries:
        target = e
        norm = term_norm(e.original)
        if not norm:
            raise SpRealistError(f"{src}: {e.label()} has an original with no words; give the real string.")
        prev = owner.get(norm)
        if prev is not None:
            if prev.replacement != e.replacement:
                raise SpRealistError(
                    f"{src}: {prev.label()} and {e.label()} cover the same string with different replacements; "
                    "give each string one replacement."
                )
            target = prev
        else:
            order.append(e)
        for term in e.terms:
            n = term_norm(term)
            if not n:
                continue
            other = owner.get(n)
            if other is not None:
                if other.replacement != e.replacement:
                    raise SpRealistError(
                        f"{src}: {other.label()} and {e.label()} both use the same variant with different "
                        "replacements; list it under one entry only (or add the full name as a variant)."
                    )
                continue
            owner[n] = target
            if target is not e:
                target.variants.append(term)
    key.entries = order
    for e in order:
        if term_norm(e.replacement) in owner:
            raise SpRealistError(
                f"{src}: the replacement of {e.label(False)} is itself a string the key replaces; "
                "choose replacements that are codes or placeholders."
            )
    if matcher_check:
        from .detect import Detector

        det = Detector(key)
        for e in order:
            for m in det.find(e.replacement):
                raise SpRealistError(
                    f"{src}: the replacement of {e.label(False)} contains a string that {key.entries[m.entry].label(False)} "
                    "replaces; choose replacements that contain no real names."
                )
    return key


# --------------------------------------------------------------------------
# writing (new entries from NER suggestions)


def _yaml_item(entry: dict) -> str:
    import yaml

    return "  - " + yaml.safe_dump(entry, default_flow_style=True, allow_unicode=True, sort_keys=False,
                                   width=10_000).strip() + "\n"


def append_entries(path: str | os.PathLike, new: list[dict]) -> Key:
    """Append ``new`` entries (dicts) to the key file at ``path`` and return the new key.

    The file is appended to, not rewritten, so comments and layout survive; the
    result is re-read and validated, and the file is only replaced (atomically)
    when it parses to the old entries plus the new ones.
    """
    p = Path(path)
    old = load_key(p, allow_empty=True)
    text = read_key_text(p)  # rewritten as UTF-8
    if not text.endswith("\n"):
        text += "\n"
    if p.suffix.lower() == ".csv":
        buf = io.StringIO()
        header = next(csv.reader(io.StringIO(text)))
        cols = [c.strip() for c in header]
        w = csv.writer(buf, lineterminator="\n")
        for e in new:
            row = {"original": e["original"], "replacement": e["replacement"],
                   "variants": ";".join(e.get("variants") or [])}
            w.writerow([row.get(c, "") for c in cols])
        candidate = text + buf.getvalue()
    else:
        candidate = text + "".join(_yaml_item(e) for e in new)
    tmp = p.with_name(p.stem + ".tmp" + p.suffix)
    tmp.write_text(candidate, encoding="utf-8")
    try:
        key = load_key(tmp)
    except SpRealistError as exc:
        tmp.unlink()
        raise SpRealistError(
            f"{p}: the new entries would make the key invalid ({exc.message.split(': ', 1)[-1].rstrip('.')}); "
            "nothing was written."
        ) from None
    originals = [e.original for e in key.entries]
    if originals[: len(old.entries)] != [e.original for e in old.entries] or len(key.entries) != len(old.entries) + len(new):
        tmp.unlink()
        raise SpRealistError(
            f"{p}: entries cannot be appended to this file's layout (the entries list is not at its end); "
            "add them by hand. Nothing was written."
        )
    os.replace(tmp, p)
    key.path = str(p)
    return key


def new_key_text(secret: str | None = None) -> str:
    """The text of a fresh YAML key with a random secret (``anonymise new-key``)."""
    import secrets

    secret = secret or secrets.token_hex(32)
    return (
        "# Pseudonym key for sp_realist. Keep it OUTSIDE the project and out of shared folders.\n"
        "# The secret lets this key reverse earlier anonymisation runs after you add entries.\n"
        f"secret: {secret}\n"
        "entries:\n"
        "  # - {original: Sarah Jones, replacement: S1 DK1, variants: [Ms Jones], name_parts: true}\n"
        "  # - {original: Riverside Surgery, replacement: \"[GP surgery]\"}\n"
    )

"""Reading untrusted exchange files safely.

QDPX files and codebooks come from other people's machines and other tools.
Everything here refuses, with one clear sentence, what could hurt the user:

* XML is parsed with :mod:`defusedxml`, so external entities, DTD tricks and
  entity-expansion ("billion laughs") bombs raise instead of expanding;
* zip archives are checked before anything is read: not a zip or truncated,
  too many entries, too much uncompressed data (zip bombs), entry names that
  are absolute or climb out of the archive with ``..``.

Nothing is ever extracted to disk: entries are read into memory (each one
capped) by name.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from ..errors import SpRealistError

#: Most entries a QDPX may hold (sources + project.qde).
MAX_ENTRIES = 20_000
#: Largest total uncompressed size accepted (2 GiB).
MAX_TOTAL_BYTES = 2 * 1024**3
#: Largest single entry read into memory (512 MiB).
MAX_ENTRY_BYTES = 512 * 1024**2
#: Largest compression ratio accepted for an entry bigger than 1 MiB (zip bombs).
MAX_RATIO = 200


class ExchangeError(SpRealistError):
    """An exchange file is unreadable or unsafe."""


def parse_xml(data: bytes, where: str):
    """Parse ``data`` with defusedxml; return the root element.

    A UTF-8 byte-order mark is accepted (several tools write one).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ExchangeError(
            f"{where}: refused unsafe XML ({type(exc).__name__}: DTDs and entities are not allowed); "
            "re-export it from the original tool."
        ) from None
    except SafeET.ParseError as exc:
        raise ExchangeError(f"{where}: not well-formed XML ({exc}); re-export it from the original tool.") from None


def local(tag: str) -> str:
    """``{urn:...}Code`` -> ``Code`` (namespaces differ between REFI-QDA versions)."""
    try:
        return _LOCAL[tag]
    except KeyError:  # a file has a few dozen distinct tags, asked for once per element
        name = _LOCAL[tag] = tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
        return name
    except TypeError:  # an unhashable tag (none in ElementTree's trees)
        return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


_LOCAL: dict = {}


@dataclass
class SafeZip:
    """A zip archive whose entry list has been checked; read entries by name."""

    path: Path
    zf: zipfile.ZipFile
    names: list[str]

    def lookup(self, name: str) -> str | None:
        """The stored entry name matching ``name``, exactly or case-insensitively."""
        if name in self._exact:
            return name
        return self._folded.get(name.casefold())

    def read(self, name: str) -> bytes:
        info = self.zf.getinfo(name)
        if info.file_size > MAX_ENTRY_BYTES:
            raise ExchangeError(
                f"{self.path}: entry {name!r} is {info.file_size} bytes uncompressed, more than the "
                f"{MAX_ENTRY_BYTES} allowed; split the project."
            )
        try:
            with self.zf.open(info) as fh:
                data = fh.read(MAX_ENTRY_BYTES + 1)
        except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile, NotImplementedError) as exc:
            raise ExchangeError(
                f"{self.path}: entry {name!r} cannot be read ({exc}); the file is damaged or truncated, "
                "export it again."
            ) from None
        if len(data) > MAX_ENTRY_BYTES:  # the header lied about the size
            raise ExchangeError(f"{self.path}: entry {name!r} is larger than its header says; refused.")
        return data

    def close(self) -> None:
        self.zf.close()

    def __post_init__(self) -> None:
        self._exact = set(self.names)
        self._folded = {}
        for n in self.names:
            self._folded.setdefault(n.casefold(), n)


def _unsafe_name(name: str) -> bool:
    if not name or "\x00" in name:
        return True
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    return ".." in parts or posixpath.isabs(norm)


def open_zip(path: str | Path | IO[bytes], label: str | None = None) -> SafeZip:
    """Open and vet a zip archive; raise :class:`ExchangeError` on anything unsafe."""
    where = label or str(path)
    if isinstance(path, (str, Path)) and not Path(path).is_file():
        raise ExchangeError(f"{where}: no such file; check the path.")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ExchangeError(
            f"{where}: not a zip archive or truncated; a .qdpx file is a zip, export it again from the original tool."
        ) from None
    except OSError as exc:
        raise ExchangeError(f"{where}: cannot be read ({exc.strerror or exc}).") from None
    try:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ExchangeError(f"{where}: {len(infos)} entries, more than the {MAX_ENTRIES} allowed; refused.")
        total = 0
        for info in infos:
            if _unsafe_name(info.filename):
                raise ExchangeError(
                    f"{where}: entry {info.filename!r} points outside the archive (absolute path or '..'); refused."
                )
            total += info.file_size
            if info.file_size > (1 << 20) and info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise ExchangeError(
                    f"{where}: entry {info.filename!r} expands {info.file_size // max(info.compress_size, 1)}-fold "
                    "(a zip bomb?); refused."
                )
        if total > MAX_TOTAL_BYTES:
            raise ExchangeError(
                f"{where}: {total} bytes uncompressed, more than the {MAX_TOTAL_BYTES} allowed; refused."
            )
    except ExchangeError:
        zf.close()
        raise
    names = [i.filename for i in infos if not i.is_dir()]
    return SafeZip(Path(str(path)) if isinstance(path, (str, Path)) else Path(where), zf, names)

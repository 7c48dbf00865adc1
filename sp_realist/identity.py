"""Who is working: the one identity every write records (coder, analyst, memo author, audit actor).

On a PostgreSQL project it is the database login (``SELECT session_user``): a ``--coder`` that names
someone else is refused.  On an SQLite project it is, in this order,

1. the name given (``--coder``, ``--analyst``, ``--author``, or the ``coder=`` argument),
2. ``$SP_REALIST_CODER``,
3. the per-user setting ``coder`` (``sp-realist config coder NAME``; a YAML file in the user's config
   folder, ``$XDG_CONFIG_HOME/sp-realist/config.yaml`` on Linux, found with platformdirs),
4. the login name.

Falling back to the login name is reported through :func:`login_fallback_notices` (the command line
says so once per command, on stderr); library code never prints.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import SpRealistError

ENV_CODER = "SP_REALIST_CODER"
APP_NAME = "sp-realist"
CONFIG_FILE = "config.yaml"
#: The per-user settings ``sp-realist config`` knows, with what each means.
SETTINGS = {"coder": "your name on every coding, memo, appraisal and log entry in SQLite projects"}

OPTION, ENVIRONMENT, USER_CONFIG, LOGIN, SESSION_USER = "option", "environment", "user config", "login", "session_user"


@dataclass(frozen=True)
class Identity:
    """The name a write is recorded under and where it came from (one of ``option``, ``environment``,
    ``user config``, ``login``, ``session_user``)."""

    name: str
    source: str


# -- per-user configuration ---------------------------------------------------------------------------
def config_path() -> Path:
    """The per-user configuration file (platformdirs' user config folder; respects ``$XDG_CONFIG_HOME``)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / CONFIG_FILE


def read_config() -> dict[str, Any]:
    """The per-user settings (empty when the file does not exist)."""
    from .yamlio import load_yaml_file

    path = config_path()
    if not path.is_file():
        return {}
    data = load_yaml_file(path, fix="fix the file or remove it", problem=False)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpRealistError(f"{path}: expected settings as 'name: value' lines; fix the file or remove it.")
    return data


def _check_setting(key: str) -> None:
    if key not in SETTINGS:
        raise SpRealistError(f"config: no setting named {key!r}; the settings are: {', '.join(SETTINGS)}.")


def set_config(key: str, value: str | None) -> Path:
    """Set (or, with ``value`` None, remove) one per-user setting; returns the file written."""
    import yaml

    _check_setting(key)
    data = read_config()
    if value is None:
        data.pop(key, None)
    else:
        value = " ".join(str(value).split())
        if not value:
            raise SpRealistError(f"config {key}: give a non-empty value (or --unset to remove it).")
        data[key] = value
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=True, allow_unicode=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def config_frame():
    """Every known setting with its value (empty when unset) and meaning, as a DataFrame."""
    import pandas as pd

    data = read_config()
    return pd.DataFrame([{"setting": k, "value": "" if data.get(k) is None else str(data[k]), "meaning": m}
                         for k, m in SETTINGS.items()], columns=["setting", "value", "meaning"])


# -- the login-name notice --------------------------------------------------------------------------
_notice: ContextVar[Callable[[Identity], None] | None] = ContextVar("sp_realist_login_notice", default=None)


@contextmanager
def login_fallback_notices(handler: Callable[[Identity], None]) -> Iterator[None]:
    """Call ``handler`` with the identity whenever a write falls back to the login name inside the block."""
    token = _notice.set(handler)
    try:
        yield
    finally:
        _notice.reset(token)


def _login_name() -> str:
    try:
        import getpass

        return getpass.getuser() or "unknown"
    except Exception:  # pragma: no cover - platform dependent
        return "unknown"


# -- the identity ---------------------------------------------------------------------------------------
def _dialect(project=None, conn=None) -> str | None:
    if conn is not None:
        return conn.dialect.name
    if project is not None:
        return project.engine.dialect.name
    return None


#: The project setting (``meta`` key) that makes each database login a person: set when a team is set up on a
#: PostgreSQL project (members log in as themselves). Until then everyone shares the one login the project was
#: made with, so that login names nobody and the SQLite order (--coder, $SP_REALIST_CODER, config, login name)
#: applies on a server too.
LOGINS_SETTING = "team:logins"


def _logins_are_identities(project=None, conn=None) -> bool:
    from sqlalchemy import select

    from . import schema as S

    q = select(S.meta.c.value).where(S.meta.c.key == LOGINS_SETTING)
    if conn is not None:
        value = conn.execute(q).scalar()
    else:
        with project.connect() as c:
            value = c.execute(q).scalar()
    return value is not None and str(value).strip('"').lower() in ("on", "true", "1")


def resolve_identity(explicit: str | None = None, *, project=None, conn=None) -> Identity:
    """Who a write is recorded under (see the module's documentation for the order).

    ``project`` or ``conn`` tells a PostgreSQL project; once its team is set up (:data:`LOGINS_SETTING`), the
    identity is always its ``session_user``.
    """
    given = " ".join(str(explicit).split()) if explicit is not None else ""
    if _dialect(project, conn) == "postgresql" and _logins_are_identities(project, conn):
        from sqlalchemy import text

        if conn is not None:
            login = conn.execute(text("SELECT session_user")).scalar_one()
        else:
            with project.connect() as c:
                login = c.execute(text("SELECT session_user")).scalar_one()
        if given and given != login:
            raise SpRealistError(f"--coder {given!r} differs from your database login {login!r}; on a server project "
                                 f"every write is recorded as the login, so leave --coder out or log in as {given!r}.")
        return Identity(login, SESSION_USER)
    if given:
        return Identity(given, OPTION)
    env = " ".join(os.environ.get(ENV_CODER, "").split())
    if env:
        return Identity(env, ENVIRONMENT)
    configured = read_config().get("coder")
    if configured is not None and " ".join(str(configured).split()):
        return Identity(" ".join(str(configured).split()), USER_CONFIG)
    identity = Identity(_login_name(), LOGIN)
    handler = _notice.get()
    if handler is not None:
        handler(identity)
    return identity


def current_user(explicit: str | None = None, *, project=None, conn=None) -> str:
    """The name of :func:`resolve_identity`."""
    return resolve_identity(explicit, project=project, conn=conn).name

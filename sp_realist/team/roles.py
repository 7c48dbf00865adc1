"""Team roles and blind coding on a PostgreSQL project.

A project database has four group roles, ``sprealist_<db>_reader``, ``_coder``, ``_analyst`` and ``_owner``,
each a member of the one before (an analyst may do what a coder may, and so on), and the GRANTs and
row-level-security policies that make them mean:

* reader: read everything;
* coder: also add and remove their own codings and memos (``coder`` / ``author`` = ``session_user``, checked
  by row-level security), excerpts, and appraise;
* analyst: also the codebook, themes, CMOCs, theories, sources, adjudication and the blind-coding setting;
* owner: also the team (``team add`` / ``remove``) and every project setting.

The **owner** is the login that created the project (``sp-realist init URL``): it owns the tables, so
PostgreSQL lets it do everything, and the first ``team add`` it runs creates the group roles and grants.
Further owners are added with ``team add NAME --role owner`` (their login gets CREATEROLE and every group
role WITH ADMIN OPTION, so they can manage the team too).  A superuser counts as an owner.

**Blind coding** (:func:`set_blind`) is the project setting ``team_blind``; while it is on, a coder sees only
their own codings: :func:`coding_restriction` is the one function deciding it (used by ``code list``,
``retrieve``, ``agreement`` and the browse reader), and on the server a SELECT policy on ``codings`` enforces
it for everyone who is not an analyst or owner.

On an SQLite project file none of this exists: every function here refuses in one sentence.
"""

from __future__ import annotations

import re

import pandas as pd
from sqlalchemy import text

from ..errors import SpRealistError
from ..store import Project

ROLES = ("reader", "coder", "analyst", "owner")
BLIND_SETTING = "team_blind"
#: The meta key saying that each database login of this project is a person (``identity.LOGINS_SETTING``).
LOGINS_KEY = "team:logins"
#: Tables a coder may write (besides reading everything): their own codings and memos (row-level security),
#: the excerpts they code, their appraisals, and the audit log every write appends to.
CODER_TABLES = ("codings", "memos", "excerpts", "appraisals", "appraisal_history", "audit_log")
#: What each role may do, for messages and ``docs/team.md``.
ROLE_MEANING = {
    "reader": "read everything",
    "coder": "also add and remove their own codings and memos, and appraise",
    "analyst": "also the codebook, themes, CMOCs, theories, sources, adjudication and blind coding",
    "owner": "also the team and every project setting",
}


def _need_server(project: Project, what: str = "team") -> None:
    if project.engine.dialect.name != "postgresql":
        raise SpRealistError(f"{what}: roles need a PostgreSQL project; {project.location} is a project file, "
                             "where everyone who can open it may change it (see docs/team.md).")


def _database(conn) -> str:
    return conn.execute(text("SELECT current_database()")).scalar_one()


def group_role(database: str, role: str) -> str:
    """The group role of ``role`` in ``database`` (``sprealist_<db>_<role>``, at most 63 characters)."""
    if role not in ROLES:
        raise SpRealistError(f"team: no role {role!r}; the roles are {', '.join(ROLES)}.")
    base = re.sub(r"[^a-z0-9_]", "_", database.lower())
    return f"sprealist_{base}"[: 63 - len(role) - 1] + f"_{role}"


def _quote(conn, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _is_owner_login(conn) -> bool:
    """The session user is a superuser or owns the project's tables (it ran ``init``)."""
    row = conn.execute(text(
        "SELECT r.rolsuper OR pg_has_role(session_user, t.tableowner, 'MEMBER') "
        "FROM pg_roles r, pg_tables t WHERE r.rolname = session_user AND t.tablename = 'meta' "
        "AND t.schemaname = current_schema()")).first()
    return bool(row and row[0])


def role_of(project: Project, login: str | None = None, *, conn=None) -> str | None:
    """The role of ``login`` (default: the session user) in this project: ``owner``, ``analyst``, ``coder``,
    ``reader`` or None (not in the team).  On a project file every user may do everything: ``owner``."""
    if project.engine.dialect.name != "postgresql":
        return "owner"
    if conn is None:
        with project.connect() as c:
            return role_of(project, login, conn=c)
    user = login if login is not None else conn.execute(text("SELECT session_user")).scalar_one()
    if login is None and _is_owner_login(conn):
        return "owner"
    db = _database(conn)
    for role in reversed(ROLES):
        g = group_role(db, role)
        row = conn.execute(text("SELECT pg_has_role(:u, oid, 'MEMBER') FROM pg_roles WHERE rolname = :g"),
                           {"u": user, "g": g}).first()
        if row and row[0]:
            return role
    return None


def require_role(project: Project, needed: str, action: str, *, conn=None) -> None:
    """Refuse, in one sentence naming the role, unless the session user has ``needed`` (or a higher role)."""
    have = role_of(project, conn=conn)
    if have is not None and ROLES.index(have) >= ROLES.index(needed):
        return
    raise SpRealistError(f"{action} needs the {needed} role, and your login has "
                         f"{'the ' + have + ' role' if have else 'no role in this project'}; ask the project's "
                         f"owner ('sp-realist team add NAME --role {needed}').")


# -- setting up the group roles ---------------------------------------------------------------------------
def _setup(conn) -> None:
    """Create the group roles, their grants and the row-level-security policies (idempotent; run by the
    login that owns the tables)."""
    db = _database(conn)
    g = {r: _quote(conn, group_role(db, r)) for r in ROLES}
    names = {r: group_role(db, r) for r in ROLES}
    existing = {r[0] for r in conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:n)"),
                                           {"n": list(names.values())})}
    for r in ROLES:
        if names[r] not in existing:
            conn.exec_driver_sql(f"CREATE ROLE {g[r]} NOLOGIN")
    for lower, higher in zip(ROLES, ROLES[1:]):
        conn.exec_driver_sql(f"GRANT {g[lower]} TO {g[higher]}")
    conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {_quote(conn, db)} TO {g['reader']}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {_quote(conn, _schema(conn))} TO {g['reader']}")
    conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {_quote(conn, _schema(conn))} TO {g['reader']}")
    conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {_quote(conn, _schema(conn))} "
                         f"TO {g['coder']}")
    for table in CODER_TABLES:
        conn.exec_driver_sql(f"GRANT INSERT, UPDATE, DELETE ON {_quote(conn, table)} TO {g['coder']}")
    conn.exec_driver_sql(f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {_quote(conn, _schema(conn))} "
                         f"TO {g['analyst']}")
    analyst = _literal(names["analyst"])
    blind_off = ("coalesce((SELECT value FROM meta WHERE key = 'setting:" + BLIND_SETTING + "'), 'false') <> 'true'")
    for table, who in (("codings", "coder"), ("memos", "author")):
        own = f"({who} = session_user OR pg_has_role(session_user, {analyst}, 'MEMBER'))"
        conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        seen = f"({own} OR {blind_off})" if table == "codings" else "(true)"
        policies = {"read": f"FOR SELECT USING {seen}",
                    "add": f"FOR INSERT TO {g['coder']} WITH CHECK {own}",
                    "change": f"FOR UPDATE TO {g['coder']} USING {own} WITH CHECK {own}",
                    "remove": f"FOR DELETE TO {g['coder']} USING {own}"}
        for name, body in policies.items():
            conn.exec_driver_sql(f"DROP POLICY IF EXISTS sprealist_{name} ON {table}")
            conn.exec_driver_sql(f"CREATE POLICY sprealist_{name} ON {table} {body}")
    # from now on each login is a person: sp_realist.identity records session_user on this project (the key the
    # identity module reads; until a team is set up everyone may share the login the project was made with)
    exists = conn.execute(text("SELECT 1 FROM meta WHERE key = :k"), {"k": LOGINS_KEY}).first()
    conn.execute(text("UPDATE meta SET value = 'on' WHERE key = :k" if exists else
                      "INSERT INTO meta (key, value) VALUES (:k, 'on')"), {"k": LOGINS_KEY})
    # meta: everyone reads; an analyst may change only the blind-coding setting; an owner everything
    blind_key = f"key = 'setting:{BLIND_SETTING}'"
    conn.exec_driver_sql("ALTER TABLE meta ENABLE ROW LEVEL SECURITY")
    policies = {"read": "FOR SELECT USING (true)",
                "blind_add": f"FOR INSERT TO {g['analyst']} WITH CHECK ({blind_key})",
                "blind_change": f"FOR UPDATE TO {g['analyst']} USING ({blind_key}) WITH CHECK ({blind_key})",
                "owner": f"FOR ALL TO {g['owner']} USING (true) WITH CHECK (true)"}
    for name, body in policies.items():
        conn.exec_driver_sql(f"DROP POLICY IF EXISTS sprealist_{name} ON meta")
        conn.exec_driver_sql(f"CREATE POLICY sprealist_{name} ON meta {body}")


def _schema(conn) -> str:
    return conn.execute(text("SELECT current_schema()")).scalar_one()


# -- the team -------------------------------------------------------------------------------------------
def team_add(project: Project, *, name: str, role: str, password: str | None = None) -> str:
    """Give the login ``name`` the ``role`` in this project (creating the login, with ``password`` if given,
    when it does not exist; an owner's login gets CREATEROLE).  Owner only.  Returns the group role."""
    _need_server(project)
    name = " ".join(str(name).split())
    if not name:
        raise SpRealistError("team add: give the login's name.")
    if role not in ROLES:
        raise SpRealistError(f"team add: no role {role!r}; the roles are {', '.join(ROLES)}.")
    with project.begin() as conn:
        require_role(project, "owner", "team add", conn=conn)
        if _is_owner_login(conn):
            _setup(conn)
        db = _database(conn)
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :g"), {"g": group_role(db, role)}).first() is None:
            raise SpRealistError("team add: the team's roles are not set up yet; the login that created the project "
                                 "must run the first 'sp-realist team add'.")
        q = _quote(conn, name)
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first() is not None
        options = " CREATEROLE" if role == "owner" else ""
        if password is not None:
            options += f" PASSWORD {_literal(password)}"
        if not exists:
            conn.exec_driver_sql(f"CREATE ROLE {q} LOGIN{options}")
        elif options:
            conn.exec_driver_sql(f"ALTER ROLE {q}{options}")
        for other in ROLES:  # one role per person: the new one replaces any other
            conn.exec_driver_sql(f"REVOKE {_quote(conn, group_role(db, other))} FROM {q}")
        if role == "owner":  # an owner may grant and revoke every group role (ADMIN OPTION, PostgreSQL 16 asks it)
            for other in ROLES:
                conn.exec_driver_sql(f"GRANT {_quote(conn, group_role(db, other))} TO {q} WITH ADMIN OPTION")
        else:
            conn.exec_driver_sql(f"GRANT {_quote(conn, group_role(db, role))} TO {q}")
        project.log(conn, "team.add", name, role=role)
    return group_role(db, role)


def team_remove(project: Project, *, name: str) -> None:
    """Take ``name`` out of this project's team (its login stays; its codings and memos are kept).  Owner only."""
    _need_server(project)
    with project.begin() as conn:
        require_role(project, "owner", "team remove", conn=conn)
        if role_of(project, name, conn=conn) is None:
            raise SpRealistError(f"team remove: {name!r} is not in this project's team; see 'sp-realist team list'.")
        db = _database(conn)
        for role in ROLES:
            conn.exec_driver_sql(f"REVOKE {_quote(conn, group_role(db, role))} FROM {_quote(conn, name)}")
        project.log(conn, "team.remove", name)


def team_list(project: Project) -> pd.DataFrame:
    """The team: each login with its role (``name``, ``role``, ``may``); the tables' owner first."""
    _need_server(project)
    with project.connect() as conn:
        db = _database(conn)
        owner = conn.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'meta' "
                                  "AND schemaname = current_schema()")).scalar_one()
        rows = [{"name": owner, "role": "owner"}]
        for role in reversed(ROLES):
            members = conn.execute(text(
                "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
                "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = :g AND m.rolcanlogin ORDER BY m.rolname"),
                {"g": group_role(db, role)}).scalars().all()
            listed = {r["name"] for r in rows}  # an owner is a member of every group (to manage them)
            rows += [{"name": m, "role": role} for m in members if m not in listed]
    df = pd.DataFrame(rows, columns=["name", "role"])
    df["may"] = [ROLE_MEANING[r] for r in df["role"]]
    return df


# -- blind coding ---------------------------------------------------------------------------------------
def set_blind(project: Project, *, on: bool) -> None:
    """Turn blind coding on or off (analyst or owner)."""
    _need_server(project, "team blind")
    with project.begin() as conn:
        require_role(project, "analyst", "team blind", conn=conn)
        project.set_setting(BLIND_SETTING, bool(on), conn=conn)
        project.log(conn, "team.blind", "on" if on else "off")


def blind(project: Project) -> bool:
    """Whether blind coding is on."""
    return bool(project.get_setting(BLIND_SETTING, False))


def coding_restriction(project: Project, user: str | None = None) -> str | None:
    """The one rule of what codings the current user may see: None (all of them), or the coder name they are
    restricted to (blind coding is on and they are neither analyst nor owner).  ``user`` is the reader's name
    where the caller already knows it; on a server it is always the session user."""
    if project.engine.dialect.name != "postgresql" or not blind(project):
        return None
    with project.connect() as conn:
        role = role_of(project, conn=conn)
        if role in ("analyst", "owner"):
            return None
        return conn.execute(text("SELECT session_user")).scalar_one()


def visible_to_me(project: Project, codings: pd.DataFrame, user: str | None = None) -> pd.DataFrame:
    """The rows of ``codings`` (a frame with a ``coder`` column) the current user may see."""
    only = coding_restriction(project, user)
    if only is None:
        return codings
    return codings[codings["coder"] == only].reset_index(drop=True)

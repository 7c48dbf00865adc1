"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` on a unix socket, trust auth, no TCP.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to an unprivileged user
(``$SP_REALIST_PG_USER``, else ``postgres`` when that account exists, else ``nobody``) and its data and socket
folders are made outside pytest's private (0700) temporary tree, owned by that user: in memory (``/dev/shm``)
where there is room, else in ``/tmp`` (:func:`_cluster_parent`). The tests connect over the
socket as the cluster's superuser ``sp_realist``.

A database holding an empty project (``TEMPLATE``) is made once; each test gets a copy of it with
``CREATE DATABASE ... TEMPLATE`` (a file copy: a few milliseconds, no schema to create), dropped after the test.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

SUPERUSER = "sp_realist"
TEMPLATE = "sp_realist_template"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot run here (no binaries, no psycopg, or the server did not start)."""


def _binary(name: str) -> str:
    only = os.environ.get("SP_REALIST_PG_BINDIR")  # the folder of initdb, pg_ctl and postgres, when given
    if only:
        if not (Path(only) / name).is_file():
            raise PostgresUnavailable(f"the PostgreSQL program {name!r} is not in {only} (SP_REALIST_PG_BINDIR)")
        return str(Path(only) / name)
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):  # Debian's layout
        return candidate
    raise PostgresUnavailable(f"the PostgreSQL program {name!r} is not installed (apt-get install postgresql)")


def _server_user() -> str | None:
    """The account the server runs as, or None to run it as the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("SP_REALIST_PG_USER")
    for name in ([wanted] if wanted else ["postgres", "nobody"]):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


def _cluster_parent() -> str:
    """Where the cluster's folder goes: ``$SP_REALIST_PG_DIR`` when set; else a memory file system
    (``/dev/shm``) with at least 1 GiB free, because every test creates and drops a database (each a copy of
    several MB of catalogue files) and on a disk shared with other work that file traffic, not PostgreSQL,
    was most of a test's set-up; else ``/tmp``. Outside pytest's private (0700) temporary tree either way,
    since the server may run as another user."""
    wanted = os.environ.get("SP_REALIST_PG_DIR")
    if wanted:
        return wanted
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= 1 << 30:
            return str(shm)
    except OSError:
        pass
    return "/tmp"


class Cluster:
    """One running cluster; :meth:`stop` ends it and removes its folder."""

    def __init__(self) -> None:
        try:
            import psycopg  # noqa: F401  (the driver the URLs name)
        except ImportError:
            raise PostgresUnavailable("psycopg is not installed (pip install 'sp-realist[postgres]')") from None
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        _binary("postgres")
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="sp-realist-pg-", dir=_cluster_parent()))
        self.data, self.socket = self.root / "data", self.root / "s"
        self.started = False
        self.socket.mkdir()
        if self.user:
            info = pwd.getpwnam(self.user)
            for path in (self.root, self.socket):
                os.chown(path, info.pw_uid, info.pw_gid)
        os.chmod(self.root, 0o755)
        try:
            self._run([self.initdb, "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                       "--locale=C", "--no-sync"])
            with open(self.data / "postgresql.conf", "a", encoding="utf-8") as fh:
                fh.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{self.socket}'\n"
                         "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                         "max_connections = 300\nshared_buffers = 32MB\n")
            self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                       "start"])
            self.started = True
            self.watchdog = self._watch(os.getpid())
        except BaseException:
            self.stop()
            raise

    def _watch(self, pid: int) -> subprocess.Popen:
        """A detached shell that stops the server and removes its folder once ``pid`` (this test process) is
        gone however it ended (killed, timed out): no server outlives the tests."""
        stop = [self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        if self.user:
            stop = ["runuser", "-u", self.user, "--", *stop]
        script = (f"while kill -0 {pid} 2>/dev/null; do sleep 1; done; "
                  f"{' '.join(shlex.quote(a) for a in stop)} >/dev/null 2>&1; rm -rf {shlex.quote(str(self.root))}")
        return subprocess.Popen(["sh", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")

    def _run(self, argv: list[str]) -> None:
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, cwd="/")
        if done.returncode:
            log = self.root / "server.log"
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"{' '.join(argv)} failed ({done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip()} {tail}".strip())

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql+psycopg://{auth}@/{database}?host={self.socket}"

    def admin(self):
        """An autocommit psycopg connection to the ``postgres`` database."""
        import psycopg

        return psycopg.connect(host=str(self.socket), dbname="postgres", user=SUPERUSER, autocommit=True)

    def stop(self) -> None:
        watchdog = getattr(self, "watchdog", None)
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
            self.watchdog = None
        if self.started:
            try:
                self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"])
            except PostgresUnavailable:
                pass
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


class Databases:
    """Fresh databases on a cluster: empty ones, and copies of a database holding an empty project."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.conn = cluster.admin()
        self.made: list[str] = []
        self.kept_names: list[str] = []
        self._template = False

    def empty(self) -> str:
        """A new, empty database; its URL."""
        return self.cluster.url(self._create(""))

    def project(self) -> str:
        """A new database holding an empty project (a copy of the template); its URL."""
        if not self._template:
            from sp_realist.store import Project

            self.conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
            self.conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
            Project.create(self.cluster.url(TEMPLATE)).close()  # disposes its engine: no session left on it
            self._template = True
        name = self._create(f' TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY')
        import psycopg

        with psycopg.connect(host=str(self.cluster.socket), dbname=name, user=SUPERUSER, autocommit=True) as c:
            c.execute("UPDATE meta SET value = %s WHERE key = 'project_id'", (str(uuid.uuid4()),))
        return self.cluster.url(name)

    def kept(self, build) -> str:
        """A database that ``build(url)`` fills, kept until the session ends (not dropped after the test):
        the original for :meth:`copy`; its URL."""
        name = f"k_{uuid.uuid4().hex[:16]}"
        self.conn.execute(f'CREATE DATABASE "{name}"')
        self.kept_names.append(name)
        build(self.cluster.url(name))
        return self.cluster.url(name)

    def copy(self, url: str) -> str:
        """A new database copied from the database at ``url`` (no session may be open on it); its URL."""
        original = url.split("@/", 1)[1].split("?", 1)[0]
        return self.cluster.url(self._create(f' TEMPLATE "{original}" STRATEGY FILE_COPY'))

    def _create(self, clause: str) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.conn.execute(f'CREATE DATABASE "{name}"{clause}')
        self.made.append(name)
        return name

    def drop_all(self) -> None:
        """Drop every database made since the last call (sessions a test left open are ended)."""
        while self.made:
            self.conn.execute(f'DROP DATABASE IF EXISTS "{self.made.pop()}" WITH (FORCE)')

    def close(self) -> None:
        self.drop_all()
        self.made.extend(self.kept_names)
        self.drop_all()
        self.conn.close()

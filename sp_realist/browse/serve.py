"""``sp-realist browse --serve``: the same interface in a web browser on this machine (textual-serve).

textual-serve runs ``sp-realist browse`` for each browser tab that connects and relays its screen; the
server listens on the loopback interface only, so colleagues on the same computer (or through an SSH
tunnel) can use it, nobody else.
"""

from __future__ import annotations

import shlex
import sys

HOST = "localhost"


def browse_command(*, project: str, coder: str, source: str | None = None) -> str:
    """The shell command each browser session runs: this Python's ``sp-realist browse`` on ``project``."""
    args = [sys.executable, "-m", "sp_realist", "-p", str(project), "browse"]
    if source is not None:
        args.append(str(source))
    args += ["--coder", coder]
    return shlex.join(args)


def make_server(*, project: str, coder: str, source: str | None = None, port: int = 8000):
    """A textual-serve ``Server`` for the reader of ``project`` on ``localhost:port`` (not yet started)."""
    try:
        from textual_serve.server import Server
    except ImportError:
        from ..errors import SpRealistError

        raise SpRealistError("browse --serve needs textual-serve; install it with "
                             "'pip install \"sp-realist[serve]\"' (or run browse in a terminal).") from None

    return Server(browse_command(project=project, coder=coder, source=source), host=HOST, port=port,
                  title="sp-realist browse")

"""The ``browse`` command: read and code sources in a full-screen terminal interface (or a browser)."""

from __future__ import annotations

import click

from ..cli_support import Int, coder_option, get_project, message, project_option, resolve_coder


def register(main: click.Group) -> None:
    main.add_command(browse_cmd)


@click.command("browse")
@click.argument("source", required=False)
@coder_option
@click.option("--serve", is_flag=True, help="Serve the interface to a web browser on localhost instead.")
@click.option("--port", type=Int(1, 65535), default=8000, show_default=True, help="Port for --serve.")
@project_option
def browse_cmd(source, coder, serve, port, project_path):
    """Read sources and code them from the keyboard: select a sentence, segment or section, code it
    (a fuzzy finder creates new codes), write memos, appraise excerpts, link them to CMOCs, search,
    undo and redo.  The footer shows the keys; docs/browse.md has the full key map.

    \b
    Examples:
      sp-realist browse                                  # the source list, then pick one
      sp-realist browse "S1 DK1 2019-05-14" --coder RA   # open this source
      sp-realist browse --serve --port 8080             # in a browser: http://localhost:8080
    """
    from ..sources import resolve_source

    coder = resolve_coder(coder)
    project = get_project(project_path)
    try:
        if source is not None:
            with project.connect() as conn:
                resolve_source(conn, source)  # a mistyped name: one sentence, before anything starts
        if serve:
            from .serve import make_server

            server = make_server(project=str(project.location), coder=coder, source=source, port=port)
            message(f"Serving sp-realist browse on http://localhost:{port} (ctrl+c stops it).")
            server.serve()
            return
        from .app import BrowseApp

        BrowseApp(project, coder=coder, source=source).run()
    finally:
        project.close()

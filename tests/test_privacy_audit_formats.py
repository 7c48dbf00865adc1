"""audit reads file and folder names and every format the project writes: svg, graphml, gexf, dot, mermaid,
PNG text chunks, docx properties, headers and footers (besides md, html, csv, json, yaml, xlsx, qdpx, qdc)."""

from __future__ import annotations

import json

import pytest

from sp_realist.privacy import audit_paths

KEY = "entries:\n  - {original: Sarah Jones, replacement: S1 DK1, name_parts: true}\n"


@pytest.fixture
def key_path(tmp_path):
    p = tmp_path / "private" / "key.yaml"
    p.parent.mkdir()
    p.write_text(KEY, encoding="utf-8")
    return p


def test_file_and_folder_names(runner, cli, tmp_path, key_path):
    out = tmp_path / "outputs"
    (out / "sarah-jones").mkdir(parents=True)
    (out / "sarah-jones" / "notes.md").write_text("nothing here\n", encoding="utf-8")
    (out / "sarah-jones-notes.md").write_text("nothing here\n", encoding="utf-8")
    (out / "scan-of-Jones.pdf").write_bytes(b"%PDF-1.4\n")
    (out / "fine.md").write_text("S1 DK1\n", encoding="utf-8")
    df = audit_paths([out], key_path)
    found = set(zip(df["file"].map(lambda f: f.split("outputs/")[-1]), df["location"]))
    assert found == {("sarah-jones", "folder name"), ("sarah-jones-notes.md", "file name"),
                     ("scan-of-Jones.pdf", "file name")}
    assert (df["original"] == "[hidden]").all()
    r = runner.invoke(cli, ["audit", str(out), "--key", str(key_path), "-f", "json"])
    assert r.exit_code == 3
    assert {x["location"] for x in json.loads(r.stdout)} == {"folder name", "file name"}
    r = runner.invoke(cli, ["audit", str(out / "sarah-jones-notes.md"), "--key", str(key_path)])
    assert r.exit_code == 3
    assert "file name" in r.stdout


def _graph():
    import networkx as nx

    G = nx.DiGraph()
    G.add_node("T1.1", label="Context: Sarah Jones's surgery", kind="context")
    G.add_node("T1.2", label="Outcome", kind="outcome")
    G.add_edge("T1.1", "T1.2", note="fine")
    return G


@pytest.mark.parametrize("suffix", [".graphml", ".gexf", ".json", ".dot", ".mmd"])
def test_graph_files(tmp_path, key_path, suffix):
    from sp_realist.cmoc.graph import export_graph

    path = tmp_path / f"theory{suffix}"
    export_graph(_graph(), path)
    df = audit_paths([path], key_path)
    assert len(df) >= 1, path.read_text(encoding="utf-8")[:300]


def test_svg_text_and_escaped_entities(tmp_path, key_path):
    svg = tmp_path / "figure.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><title>Sarah&#160;Jones</title>'
                   "<text>fine</text></svg>", encoding="utf-8")
    df = audit_paths([svg], key_path)
    assert list(df["location"]) == ["line 1"]


def test_png_text_chunks(tmp_path, key_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    def png(name, **chunks):
        info = PngInfo()
        for k, v in chunks.items():
            if k.startswith("i_"):
                info.add_itxt(k[2:], v, zip=True)
            else:
                info.add_text(k, v)
        Image.new("RGB", (4, 4)).save(tmp_path / name, pnginfo=info)
        return tmp_path / name

    clean = png("clean.png", Title="Programme theory", Software="sp_realist")
    leaky = png("leaky.png", Title="Programme theory", Author="Sarah Jones", i_Description="for Ms Jones")
    assert audit_paths([clean], key_path).empty
    df = audit_paths([leaky], key_path)
    assert set(df["location"]) == {"png text chunk 'Author'", "png text chunk 'Description'"}
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(Exception, match="broken.png: not a readable PNG"):
        audit_paths([bad], key_path)


def test_docx_core_properties_headers_and_footers(tmp_path, key_path):
    import docx

    d = docx.Document()
    d.add_paragraph("Body without names.")
    section = d.sections[0]
    section.different_first_page_header_footer = True
    section.first_page_header.paragraphs[0].text = "Interview with Sarah Jones"
    section.footer.paragraphs[0].text = "fine"
    d.core_properties.title = "Notes for Ms Jones"
    d.core_properties.last_modified_by = "sarah.jones"
    path = tmp_path / "report.docx"
    d.save(path)
    locs = set(audit_paths([path], key_path)["location"])
    assert locs == {"section 1 first page header paragraph 1", "document property title",
                    "document property last_modified_by"}

"""Knowledge documents that are PDFs: page-ordered text, counted drops for hostile or textless files."""

from __future__ import annotations

import asyncio
import io
import json
import random
import sys
from pathlib import Path

import pytest
import yaml

from labrador.trainer.sdg import generate_leaf, pdftext
from labrador.trainer.sdg.pdftext import PdfTextError, pdf_to_markdown
from labrador.trainer.teachers.replay import ReplayTeacher

pypdf = pytest.importorskip("pypdf")

ROOT = Path(__file__).resolve().parents[3]
KNOWLEDGE = "knowledge/history/printing_press/qna.yaml"
PDF_PATH = "documents/knowledge/history/printing_press/press.pdf"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str] | None]) -> bytes:
    """A minimal valid PDF, hand-written: one page per item, its lines as Helvetica text (``None``:
    a page with only a filled rectangle, like a scan without a text layer)."""
    n = len(pages)
    font = 3 + 2 * n
    objs: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
           + b"] /Count %d >>" % n,
        font: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    for i, lines in enumerate(pages):
        if lines is None:
            stream = b"0.5 g 72 72 400 600 re f"
        else:
            body = " T* ".join(f"({_escape(line)}) Tj" for line in lines)
            stream = f"BT /F1 12 Tf 14 TL 72 720 Td {body} ET".encode("latin-1")
        objs[3 + 2 * i] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R"
                           b" >> >> /Contents %d 0 R >>" % (font, 4 + 2 * i))
        objs[4 + 2 * i] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % offsets[num] for num in sorted(objs))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def encrypted(data: bytes, user: str, owner: str = "owner") -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="RC4-128")  # RC4: no crypto package needed
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


THREE_PAGES = [["Gutenberg built the press", "around 1440 in Mainz."],
               ["Movable type spread", "# not a heading", "to Venice by 1469."],
               ["By 1500 presses ran in", "more than 250 cities."]]


def leaf_bytes() -> bytes:
    return (ROOT / "taxonomy" / KNOWLEDGE).read_bytes()


def md_documents() -> list[tuple[str, bytes]]:
    patterns = yaml.safe_load(leaf_bytes())["document"]["patterns"]
    return [(p, (ROOT / p).read_bytes()) for p in patterns]


def teacher() -> ReplayTeacher:  # knowledge.json answers by prompt rule, so any chunk text works
    return ReplayTeacher.from_file(ROOT / "tests" / "fixtures" / "sdg" / "knowledge.json")


def run(documents, out: Path | None):
    t = teacher()
    res = asyncio.run(generate_leaf(KNOWLEDGE, leaf_bytes(), t, out, documents=documents))
    return res, t


# -- extraction ---------------------------------------------------------------------------------


def test_text_in_page_order_with_page_headings():
    text = pdf_to_markdown(make_pdf(THREE_PAGES))
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads == ["## Page 1", "## Page 2", "## Page 3"]
    positions = [text.index(s) for s in ("Gutenberg", "around 1440", "Movable type", "Venice", "250 cities")]
    assert positions == sorted(positions)
    assert "\\# not a heading" in text  # page text cannot start a new Markdown section


def test_empty_pages_are_skipped_but_numbered():
    text = pdf_to_markdown(make_pdf([None, ["only text here"], None]))
    assert text.startswith("## Page 2\n\nonly text here")
    assert "Page 1" not in text and "Page 3" not in text


def test_scanned_pdf_says_ocr_is_not_done():
    with pytest.raises(PdfTextError) as info:
        pdf_to_markdown(make_pdf([None, None]))
    assert info.value.reason == "no_text_document" and "OCR is not done" in str(info.value)


@pytest.mark.parametrize("data", [
    b"", b"%PDF-1.7", b"%PDF-1.7 binary\x00\xff", b"not a pdf at all",
    make_pdf(THREE_PAGES).replace(b"/Length", b"/Filter /FlateDecode /Length"),  # not really deflated
    make_pdf(THREE_PAGES).replace(b"/Type /Pages", b"/Type /Nope "),
])
def test_corrupt_pdfs_are_unreadable(data):  # (pypdf repairs a wrong /Root or xref: those are read)
    with pytest.raises(PdfTextError) as info:
        pdf_to_markdown(data)
    assert info.value.reason in ("unreadable_document", "no_text_document")


def test_truncated_and_mutated_pdfs_never_raise_anything_else():
    good = make_pdf(THREE_PAGES)
    rnd = random.Random(1)
    variants = [good[:k] for k in range(0, len(good), max(1, len(good) // 40))]
    for _ in range(60):
        b = bytearray(good)
        for _ in range(rnd.randint(1, 8)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        variants.append(bytes(b))
    for data in variants:
        try:
            assert isinstance(pdf_to_markdown(data, max_seconds=5), str)
        except PdfTextError as exc:
            assert exc.reason in ("unreadable_document", "no_text_document")


def test_encrypted_pdf_needs_a_password():
    with pytest.raises(PdfTextError) as info:
        pdf_to_markdown(encrypted(make_pdf(THREE_PAGES), user="secret"))
    assert info.value.reason == "unreadable_document" and "encrypted" in str(info.value)


def test_owner_password_only_pdf_is_read():
    assert "Gutenberg" in pdf_to_markdown(encrypted(make_pdf(THREE_PAGES), user=""))


def test_bounds_drop_the_whole_document():
    data = make_pdf(THREE_PAGES)
    with pytest.raises(PdfTextError, match="3 pages, more than the 2 allowed"):
        pdf_to_markdown(data, max_pages=2)
    with pytest.raises(PdfTextError, match="more than 20 characters"):
        pdf_to_markdown(data, max_chars=20)
    with pytest.raises(PdfTextError, match="took more than"):
        pdf_to_markdown(data, max_seconds=0)
    assert pdf_to_markdown(data, max_pages=3, max_chars=10_000, max_seconds=30)


def test_default_bounds():
    assert pdftext.MAX_PAGES == 500 and pdftext.MAX_CHARS == 2_000_000
    many = make_pdf([["p"]] * 501)
    with pytest.raises(PdfTextError, match="501 pages"):
        pdf_to_markdown(many)


def test_without_pypdf_pdfs_are_unsupported(monkeypatch):
    monkeypatch.setitem(sys.modules, "pypdf", None)  # import fails
    with pytest.raises(PdfTextError) as info:
        pdf_to_markdown(make_pdf(THREE_PAGES))
    assert info.value.reason == "unsupported_document" and "pip install" in str(info.value)


# -- through the knowledge pipeline -------------------------------------------------------------


def test_knowledge_leaf_from_a_pdf(tmp_path):
    res, t = run([(PDF_PATH, make_pdf(THREE_PAGES))], tmp_path)
    assert res.status == "ok", res.error
    assert res.kept > 0 and {s["origin"]["document"] for s in res.samples} == {PDF_PATH}
    chunk_prompts = [r.messages[-1][1] for r in t.requests if "[Document]" in r.messages[-1][1]]
    assert chunk_prompts and all("## Page 1" in p and "Gutenberg" in p and "250 cities" in p for p in chunk_prompts)
    manifest = json.loads((res.folder / "manifest.json").read_text())
    assert [d["path"] for d in manifest["documents"]] == [PDF_PATH]
    assert not any("document" in reason for reason in res.dropped)


def test_bad_pdfs_are_counted_and_the_other_documents_used(tmp_path):
    docs = md_documents() + [
        ("documents/broken.pdf", b"%PDF-1.7 binary\x00garbage"),
        ("documents/locked.pdf", encrypted(make_pdf(THREE_PAGES), user="secret")),
        ("documents/scan.pdf", make_pdf([None])),
        (PDF_PATH, make_pdf(THREE_PAGES)),
    ]
    res, t = run(docs, tmp_path)
    assert res.status == "ok", res.error
    assert res.dropped["unreadable_document"] == 2 and res.dropped["no_text_document"] == 1
    good = {PDF_PATH} | {p for p, _ in md_documents()}
    assert res.kept > 0 and {s["origin"]["document"] for s in res.samples} <= good
    chunk_prompts = [r.messages[-1][1] for r in t.requests if "[Document]" in r.messages[-1][1]]
    assert any("## Page 1" in p and "Gutenberg built the press" in p for p in chunk_prompts)  # the good PDF
    md_text = md_documents()[0][1].decode().split("\n\n")[1][:60]
    assert any(md_text in p for p in chunk_prompts)  # and the Markdown documents
    errors = json.loads((res.folder / "manifest.json").read_text())["errors"]
    assert any(e.startswith("documents/locked.pdf: encrypted") for e in errors)
    assert any(e.startswith("documents/scan.pdf:") and "OCR is not done" for e in errors)


def test_only_unusable_pdfs_fail_the_leaf_clearly(tmp_path):
    res, _ = run([("documents/scan.pdf", make_pdf([None]))], tmp_path)
    assert res.status == "failed" and "no document text" in res.error and "OCR is not done" in res.error
    assert not (tmp_path / "leaves").exists()


def test_leaf_key_covers_pdf_bytes_and_extractor(tmp_path, monkeypatch):
    a, _ = run([(PDF_PATH, make_pdf(THREE_PAGES))], None)
    b, _ = run([(PDF_PATH, make_pdf(THREE_PAGES[:2]))], None)
    md, _ = run(md_documents(), None)
    assert a.key != b.key  # document bytes are hashed
    monkeypatch.setattr(pdftext, "VERSION", "test-next")
    a2, _ = run([(PDF_PATH, make_pdf(THREE_PAGES))], None)
    md2, _ = run(md_documents(), None)
    assert a2.key != a.key  # a new extractor regenerates PDF leaves ...
    assert md2.key == md.key  # ... and only those

"""The demo's PDF is a real PDF: magic bytes, and an xref table that points at its objects."""

from __future__ import annotations

import re

from cli.sample_pdf import sample_pdf


def test_sample_pdf_is_well_formed() -> None:
    pdf = sample_pdf()
    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\n(\d+)\n", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[startxref:].startswith(b"xref\n")
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n ", pdf)]
    assert len(offsets) == 5
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number)


def test_text_is_escaped() -> None:
    pdf = sample_pdf(("a (b) \\ c",))
    assert b"(a \\(b\\) \\\\ c) Tj" in pdf

"""A small, valid one-page PDF made on the fly: the demo's "client material"."""

from __future__ import annotations

SAMPLE_LINES = (
    "Cafeneaua Boaba - dosar de prezentare",
    "Locatie: Strada Memorandumului, Cluj-Napoca, langa campusul UBB.",
    "Oferta: cafea de specialitate, prajituri de casa, spatiu de lucru.",
    "Program: 7:30 - 22:00; evenimente: seri de board games si lecturi.",
    "Buget initial de marketing: 6.000 EUR pentru primele 3 luni.",
)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def sample_pdf(lines: tuple[str, ...] = SAMPLE_LINES) -> bytes:
    """PDF 1.4 with Helvetica text; byte offsets in the xref table are exact."""
    text = "\n".join(
        f"BT /F1 12 Tf 72 {720 - 20 * i} Td ({_escape(line)}) Tj ET" for i, line in enumerate(lines)
    ).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)

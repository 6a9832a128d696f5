"""Min plan as a PDF (fpdf2, pure Python): large text, the same sections as the page.

fpdf2's core font Helvetica is Latin-1, which has å, ä, ö and é, so no font file is needed
(nothing to apt-get in CI); the few typographic characters outside Latin-1 are replaced.
"""

from __future__ import annotations

from fpdf import FPDF

from adapter.minplan.sections import footer, sections
from adapter.minplan.view import MinPlan

_PLAIN = str.maketrans({"–": "-", "—": "-", "’": "'", "“": '"', "”": '"', "…": "...", "•": "-"})  # noqa: RUF001 - the characters to replace
BODY_PT = 15
HEADING_PT = 19


def _latin1(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def survey_lines(code: str, url: str) -> tuple[str, ...]:
    return (
        "Vad tyckte du om mötet? Svara anonymt på några korta frågor:",
        f"Gå till {url} och skriv koden {code}",
        "Koden kan bara användas en gång. Vi ser inte vem som har svarat.",
    )


def render_pdf(plan: MinPlan, survey: tuple[str, str] | None = None) -> bytes:
    """The PDF; `survey` = (code, answer page URL) prints the survey code at the end."""
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_title(_latin1(plan.heading))
    pdf.set_lang("sv")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 26)
    pdf.multi_cell(0, 12, _latin1(plan.heading), new_x="LMARGIN", new_y="NEXT")
    if plan.patient_name:
        pdf.set_font("Helvetica", "", BODY_PT)
        pdf.multi_cell(0, 8, _latin1(plan.patient_name), new_x="LMARGIN", new_y="NEXT")
    for section in sections(plan):
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", HEADING_PT)
        pdf.multi_cell(0, 10, _latin1(section.heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", BODY_PT)
        for line in section.lines:
            pdf.multi_cell(0, 8, _latin1(f"- {line}"), new_x="LMARGIN", new_y="NEXT")
    if survey is not None:
        pdf.ln(6)
        pdf.set_font("Helvetica", "B", HEADING_PT)
        pdf.multi_cell(0, 10, "Tyck till om mötet", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", BODY_PT)
        for line in survey_lines(*survey):
            pdf.multi_cell(0, 8, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    text = footer(plan)
    if text:
        pdf.ln(6)
        pdf.set_font("Helvetica", "I", 12)
        pdf.multi_cell(0, 6, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())

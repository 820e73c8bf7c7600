"""A digest as HTML (Jinja2) and PDF (fpdf2), from one list of key figures and tables, charts as PNG pictures.

The PDF embeds DejaVu Sans (shipped with matplotlib) so any site or zone name prints, and its text can be
extracted (tests read the figures back with pypdf).
"""

import base64
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.reporting.digest.charts import charts
from services.reporting.digest.figures import Digest, duration, percent

TEMPLATES = Path(__file__).resolve().parent / "templates"
FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
DEFINITIONS = (
    "Compliance rate = persons with the required PPE / (with + without); indeterminate observations (a body part "
    "not visible, a person below MinConfidence) are counted but left out of the rate. Incidents are those that "
    "started in the period. Time to acknowledge: from an incident's start to an operator's acknowledgement. "
    "Time to correct: from its start to the end of the violation, false positives left out. Alert precision = "
    "confirmed / reviewed incidents. Hours and days are the site's local time."
)


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    empty: str = "nothing in this period"
    text_columns: int = 1  # the leading columns that hold names (left aligned); the others hold numbers


def title(digest: Digest) -> str:
    return f"PPE compliance digest: {digest.window.site_id}"


def subtitle(digest: Digest) -> str:
    span = digest.window
    return f"{span.period.value.capitalize()}, {span.label} ({span.timezone})"


def key_figures(digest: Digest) -> list[tuple[str, str]]:
    overall, found = digest.overall, digest.incidents
    severities = ", ".join(f"{count} {name}" for name, count in found.by_severity.items())
    ack, fixed, precision = found.to_acknowledge, found.to_correct, found.precision
    return [
        ("Compliance rate", percent(overall.rate)),
        ("Persons observed", f"{overall.observed} ({overall.persons_with} with PPE, {overall.persons_without} "
                             f"without, {overall.persons_indeterminate} indeterminate)"),
        ("Incidents", f"{found.total} ({severities or 'none'}); {found.still_open} still open"),
        ("Time to acknowledge", f"median {duration(ack.median_s)}, 90th percentile {duration(ack.p90_s)} "
                                f"({ack.count} acknowledged, {found.unacknowledged} not)"),
        ("Time to correct", f"median {duration(fixed.median_s)}, 90th percentile {duration(fixed.p90_s)} "
                            f"({fixed.count} corrected)"),
        ("Alert precision", f"{percent(precision.precision)} ({precision.confirmed} confirmed of "
                            f"{precision.reviewed} reviewed, {_plural(precision.false_positives, 'false positive')})"),
    ]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def tables(digest: Digest) -> dict[str, Table]:
    def counts(label: str) -> tuple[str, ...]:
        return (label, "with", "without", "indeterminate", "rate")

    return {
        "zones": Table("Compliance by zone", counts("zone"), [
            (z.label, str(z.persons_with), str(z.persons_without), str(z.persons_indeterminate), percent(z.rate))
            for z in digest.zones]),
        "equipment": Table("Compliance by equipment", counts("equipment"), [
            (e.label, str(e.persons_with), str(e.persons_without), str(e.persons_indeterminate), percent(e.rate))
            for e in digest.equipment]),
        "locations": Table("Top locations (cameras with the most violations)",
                           ("camera", "zone", "persons without PPE", "rate"), [
            (loc.camera_id, loc.zone_id, str(loc.persons_without), percent(loc.rate))
            for loc in digest.top_locations], text_columns=2),
        "hours": Table("Top hours (local)", ("hour", "persons without PPE"), [
            (f"{hour:02d}:00-{hour:02d}:59", str(count)) for hour, count in digest.top_hours]),
        "precision": Table("Alert precision by camera (reviewers' verdicts)",
                           ("camera", "incidents", "reviewed", "confirmed", "false positives", "precision"), [
            (p.label, str(p.incidents), str(p.reviewed), str(p.confirmed), str(p.false_positives),
             percent(p.precision)) for p in digest.incidents.precision_by_camera]),
    }


# ---- HTML ---------------------------------------------------------------------------------------------

_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def html(digest: Digest, pictures: Mapping[str, bytes] | None = None,
         src: Callable[[str, bytes], str] = lambda name, png: data_uri(png)) -> str:
    """The digest as one HTML page; `src` names each picture (a data: URI to download, `cid:` in an e-mail)."""
    pictures = pictures if pictures is not None else charts(digest)
    return _ENV.get_template("digest.html").render(
        title=title(digest), subtitle=subtitle(digest), key_figures=key_figures(digest), tables=tables(digest),
        images={name: src(name, png) for name, png in pictures.items()}, definitions=DEFINITIONS,
        generated=f"{digest.generated_at:%Y-%m-%d %H:%M} UTC",
    )


# ---- PDF ----------------------------------------------------------------------------------------------

class _Document(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", size=7)
        self.set_text_color(110)
        self.cell(0, 5, f"{self.footer_text}   page {self.page_no()} of {{nb}}", align="C")


def pdf(digest: Digest, pictures: Mapping[str, bytes] | None = None) -> bytes:
    """The digest as an A4 PDF: key figures, charts, tables, definitions."""
    pictures = pictures if pictures is not None else charts(digest)
    document = _Document(format="A4")
    document.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    document.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    document.set_title(f"{title(digest)}, {subtitle(digest)}")
    document.set_creator("PPE compliance platform, reporting")
    document.set_creation_date(digest.generated_at)
    document.footer_text = f"{title(digest)}, generated {digest.generated_at:%Y-%m-%d %H:%M} UTC"
    document.set_auto_page_break(True, margin=16)
    document.add_page()
    document.set_font("DejaVu", "B", 16)
    document.cell(h=9, text=title(digest), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    document.set_font("DejaVu", size=10)
    document.cell(h=6, text=subtitle(digest), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    document.ln(3)
    _table(document, Table("Key figures", ("figure", "value"), [tuple(kv) for kv in key_figures(digest)]),
           widths=(1, 3), header=False)
    found = tables(digest)
    _picture(document, pictures["trend"])
    _table(document, found["zones"])
    _picture(document, pictures["zones"])
    _table(document, found["equipment"])
    _picture(document, pictures["hours"])
    for name in ("locations", "hours", "precision"):
        _table(document, found[name])
    document.set_font("DejaVu", size=7)
    document.set_text_color(90)
    document.multi_cell(0, 3.5, DEFINITIONS, align="L")
    return bytes(document.output())


def _heading(document: FPDF, text: str) -> None:
    if document.will_page_break(20):
        document.add_page()
    document.set_font("DejaVu", "B", 11)
    document.set_text_color(0)
    document.cell(text=text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    document.ln(1)


def _table(document: FPDF, table: Table, *, widths: tuple[int, ...] | None = None, header: bool = True) -> None:
    _heading(document, table.title)
    document.set_font("DejaVu", size=8)
    if not table.rows:
        document.cell(text=table.empty, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        document.ln(3)
        return
    text = table.text_columns if header else len(table.header)
    align = ("LEFT",) * text + ("RIGHT",) * (len(table.header) - text)
    with document.table(col_widths=widths or (2,) + (1,) * (len(table.header) - 1), text_align=align,
                        first_row_as_headings=header, line_height=4.5, padding=1) as grid:
        for row in ([table.header] if header else []) + table.rows:
            cells = grid.row()
            for value in row:
                cells.cell(value)
    document.ln(3)


def _picture(document: FPDF, png: bytes) -> None:
    document.image(io.BytesIO(png), w=document.epw)
    document.ln(2)

"""A digest as an e-mail (HTML body with the charts inline, a plain-text part, the PDF attached) and its sending
over SMTP (the standard library's smtplib, in a worker thread)."""

import asyncio
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from services.reporting.digest import render
from services.reporting.digest.figures import Digest

CID_DOMAIN = "digest.ppe"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 30.0


class SendFailed(RuntimeError):
    """The SMTP server refused or could not be reached; the ledger retries later."""


def filename(digest: Digest, suffix: str) -> str:
    span = digest.window
    return f"ppe-digest-{span.site_id}-{span.period.value}-{span.first_day:%Y%m%d}.{suffix}"


def digest_message(
    digest: Digest, *, sender: str, to: str, pdf: bytes, pictures: Mapping[str, bytes]
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{render.title(digest)}, {render.subtitle(digest)}"
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = make_msgid(domain=CID_DOMAIN)
    lines = [render.title(digest), render.subtitle(digest), ""]
    lines += [f"{name}: {value}" for name, value in render.key_figures(digest)]
    lines += ["", "The full digest, with charts and tables, is attached as a PDF."]
    message.set_content("\n".join(lines))
    cids = {name: make_msgid(domain=CID_DOMAIN) for name in pictures}
    message.add_alternative(render.html(digest, pictures, src=lambda name, png: f"cid:{cids[name][1:-1]}"),
                            subtype="html")
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None  # added just above
    for name, png in pictures.items():
        html_part.add_related(png, maintype="image", subtype="png", cid=cids[name], filename=f"{name}.png")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=filename(digest, "pdf"))
    return message


async def send(smtp: SmtpSettings, message: EmailMessage) -> None:
    await asyncio.to_thread(_send_blocking, smtp, message)


def _send_blocking(smtp: SmtpSettings, message: EmailMessage) -> None:
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailed(f"SMTP server {smtp.host}:{smtp.port}: {exc}") from exc

"""Response headers the download routes share."""

from urllib.parse import quote


def attachment(name: str) -> dict[str, str]:
    """Content-Disposition for a download named `name` (RFC 6266): an ASCII `filename` for old clients, every other
    character replaced by "_", and the exact name in `filename*` (UTF-8, percent-encoded). A name from the request
    (a site id in any script) never reaches the header as raw bytes, so it can neither break the header's latin-1
    encoding nor close the quotes."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\;%' else "_" for c in name)
    return {"Content-Disposition": f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"}

"""AWS Signature Version 4 check of the Rekognition-compatible endpoint.

The caller signs with botocore (boto3, the AWS CLI, any SDK); we recompute the signature with botocore's own
signer (`SigV4Auth`) over the request exactly as received, with the secret configured for the access key it
names, and compare in constant time. Nothing here is hand-written crypto: the canonical request, the string to
sign and the key derivation are botocore's. Errors carry the types and texts AWS answers with, so SDKs raise
the same exceptions they raise against AWS.
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SIGNING_SERVICE = "rekognition"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)  # what AWS allows between the signing time and its clock
# Headers a signature must cover, so none of them can be changed in flight (botocore signs them all).
REQUIRED_SIGNED = frozenset({"host", "x-amz-date", "x-amz-target"})


class AuthError(Exception):
    """The request is not authenticated; `aws_type` is the AWS error type an SDK expects."""

    def __init__(self, aws_type: str, message: str) -> None:
        super().__init__(message)
        self.aws_type = aws_type


@dataclass(frozen=True)
class SignedRequest:
    """The Authorization header of one request, parsed."""

    access_key: str
    date: str  # yyyymmdd of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # X-Amz-Date, yyyymmddThhmmssZ


def parse(authorization: str | None, amz_date: str | None, *, now: datetime | None = None) -> SignedRequest:
    """Read the Authorization header and check its shape and time; no secret is needed yet."""
    if not authorization:
        raise AuthError("MissingAuthenticationTokenException", "Request is missing Authentication Token")
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError("IncompleteSignatureException", f"Unsupported authorization algorithm; use {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise AuthError("IncompleteSignatureException", f"Authorization header requires {', '.join(missing)}")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise AuthError(
            "IncompleteSignatureException",
            "Credential must have the form <access key>/<date>/<region>/<service>/aws4_request",
        )
    access_key, date, region, service, _ = scope
    if service != SIGNING_SERVICE:
        raise AuthError(
            "InvalidSignatureException", f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'."
        )
    signed = tuple(fields["SignedHeaders"].split(";"))
    absent = sorted(REQUIRED_SIGNED - set(signed))
    if absent:
        raise AuthError("InvalidSignatureException", f"The signature must cover the headers {', '.join(absent)}")
    if not amz_date:
        raise AuthError("IncompleteSignatureException", "Request must carry an X-Amz-Date header")
    try:
        signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError as exc:
        raise AuthError("IncompleteSignatureException", "X-Amz-Date must be yyyymmddThhmmssZ") from exc
    if amz_date[:8] != date:
        raise AuthError("InvalidSignatureException", "Credential date does not match X-Amz-Date")
    now = now or datetime.now(UTC)
    if abs(now - signed_at) > MAX_SKEW:
        raise AuthError(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is outside {MAX_SKEW.seconds // 60} minutes of "
            f"{now.strftime(SIGV4_TIMESTAMP)}.",
        )
    return SignedRequest(access_key, date, region, service, signed, fields["Signature"], amz_date)


def verify(
    signed: SignedRequest,
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    """Recompute the signature over the request as received; raises AuthError unless it matches.

    `headers`: every (name, value) received, names in any case; only the signed ones are used.
    """
    values: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() in signed.signed_headers:
            values.setdefault(name.lower(), []).append(value)
    unsent = [name for name in signed.signed_headers if name not in values]
    if unsent:
        raise AuthError("InvalidSignatureException", f"Signed headers are missing from the request: {unsent}")
    declared_hash = values.get("x-amz-content-sha256")
    if declared_hash is not None and declared_hash != [hashlib.sha256(body).hexdigest()]:
        raise AuthError("InvalidSignatureException", "X-Amz-Content-SHA256 does not match the request body")
    url = f"http://{values['host'][0]}{path}" + (f"?{query}" if query else "")  # http: the payload is always hashed
    request = AWSRequest(
        method=method, url=url, headers={name: ",".join(items) for name, items in values.items()}, data=body
    )
    request.context["timestamp"] = signed.timestamp
    signer = SigV4Auth(Credentials(signed.access_key, secret_key), signed.service, signed.region)
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(sorted(signed.signed_headers)):
        raise AuthError("InvalidSignatureException", "SignedHeaders must be lowercase, sorted, and signable")
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected.encode(), signed.signature.encode()):
        raise AuthError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )

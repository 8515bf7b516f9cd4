"""HMAC-SHA1 signatures of SigV2 (S3's REST authentication and its POST policies)."""

from __future__ import annotations

import base64
import hmac

__all__ = ["sign_v2", "signatures_equal_v2"]


def sign_v2(secret: str, to_sign: bytes | str) -> str:
    """Base64 of HMAC-SHA1(secret, to_sign): a request's string to sign, or a POST
    policy document as the form carries it."""
    message = to_sign.encode("utf-8") if isinstance(to_sign, str) else to_sign
    return base64.b64encode(hmac.digest(secret.encode("utf-8"), message, "sha1")).decode("ascii")


def signatures_equal_v2(expected: str, provided: str) -> bool:
    """Constant-time, and safe on any input: compare_digest refuses non-ASCII str."""
    return hmac.compare_digest(expected.encode("ascii"), provided.encode("latin-1", "replace"))

"""A stand-in for GitHub's secret-scanning sender: its key list and its signed alerts,
made as GitHub documents them (ECDSA P-256 over the raw body, DER, base64)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

IDENTIFIER = "github-public-key-identifier"
SIGNATURE = "github-public-key-signature"


@dataclass
class SigningKey:
    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def identifier(self) -> str:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


def write_key_list(path: Path, *keys: SigningKey) -> Path:
    """The file an operator downloads from api.github.com/meta/public_keys/secret_scanning."""
    document = {
        "public_keys": [
            {"key_identifier": key.identifier, "key": key.pem, "is_current": index == 0}
            for index, key in enumerate(keys)
        ]
    }
    path.write_text(json.dumps(document))
    return path


def alert_body(*tokens: str, url: str = "https://github.com/octo/repo/blob/abc/config.py") -> bytes:
    matches: list[dict[str, Any]] = [
        {"token": token, "type": "authgate_api_key", "url": url, "source": "content"}
        for token in tokens
    ]
    return json.dumps(matches).encode()


def signed_headers(key: SigningKey, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        IDENTIFIER: key.identifier,
        SIGNATURE: key.sign(body),
    }

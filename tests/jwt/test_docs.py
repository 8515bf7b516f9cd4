"""The config example of "Tokens from your identity provider" (docs/tokens.md) loads as
written, and, pointed at the test issuer's key set, lets that issuer's tokens in with
the scopes and role the page says."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from authgate.runtime import Runtime
from authgate.settings import load_settings
from tests.jwt.issuer import TestIssuer
from tests.jwt.test_verifier import call

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tokens.md"


def example() -> str:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## Tokens from your identity provider", 1)[1]
    found = re.search(r"```toml\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_the_example_loads(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(example())
    settings = load_settings(config, data_dir=tmp_path / "data")
    (table,) = settings.jwt_issuers
    assert table.issuer == "https://login.example.com/"
    assert table.scope_map["api.reports"] == ("reports:read", "read")


def test_the_example_lets_its_issuers_tokens_in(
    tmp_path: Path, runtime_for: Callable[..., Runtime], issuer: TestIssuer
) -> None:
    config = tmp_path / "authgate.toml"
    served = example().replace("https://login.example.com/.well-known/jwks.json", issuer.url)
    config.write_text(served)
    loaded = load_settings(config, data_dir=tmp_path / "data")
    values: dict[str, Any] = {
        "jwt_issuers": [spec.model_dump() for spec in loaded.jwt_issuers],
        "scopes": list(loaded.scopes),
    }
    rt = runtime_for(**values)
    claims = {"iss": "https://login.example.com/", "aud": "https://api.example.com"}
    token = issuer.sign(claims, scp=["api.reports", "openid"], groups=["api-admins"])
    response = call(rt, token=token)
    assert response.status_code == 200, response.text
    who = response.json()
    assert who["id"] == "jwt:https://login.example.com/#user-42"
    assert (who["scopes"], who["role"]) == (["read", "reports:read"], "admin")
    expired = issuer.sign(claims, exp=int(time.time()) - 3600)
    assert call(rt, token=expired).json()["code"] == "jwt_expired"

"""Bearer JWT verifications per second (JWKS cached) beside an authgate key's, same run.

Run: .venv/bin/python bench/bench_jwt.py [--seconds 1]

Each case is one whole decision of the gate (``Gate.decide`` driven by ``run_sync``) for
``Authorization: Bearer <token>`` on a rule that needs a scope: an authgate API key
(key cache warm: the baseline), a JWT signed RS256 (RSA 2048) and one signed ES256
(P-256), from an issuer whose key set is already in memory; and, as the JWT's floor,
its signature verified alone (joserfc's ``validate_compact`` on a parsed token, no
claims, no gate). Printed with each case's ratio to the baseline. A measurement, not
a test.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from joserfc import jws, jwt
from joserfc.jwk import ECKey, RSAKey

from authgate.credentials.verifiers import FactsRequest
from authgate.facts import RequestFacts
from authgate.gate import Gate
from authgate.manage.keys import Actor
from authgate.pipeline import run_sync
from authgate.policy import Rule
from authgate.runtime import Runtime
from authgate.settings import load_settings

ISSUER = "https://idp.bench.test"
AUDIENCE = "https://api.bench.test"


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Best of three runs of calls per second."""
    best = 0.0
    for _ in range(3):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(50):
                fn()
            count += 50
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def bearer(token: str) -> RequestFacts:
    headers = (("authorization", f"Bearer {token}"),)
    return RequestFacts(method="GET", path="/api/x", headers=headers, peer="10.0.0.1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa", "use": "sig"})
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec", "use": "sig"})
    with tempfile.TemporaryDirectory() as tmp:
        jwks = Path(tmp) / "jwks.json"
        keys = [key.as_dict(private=False) for key in (rsa, ec)]
        jwks.write_text(json.dumps({"keys": keys}))
        settings = load_settings(
            data_dir=Path(tmp) / "data",
            localhost_bypass="off",
            failure_rate_limit="off",
            access_log=False,
            jwt_issuers=[
                {"issuer": ISSUER, "jwks_file": str(jwks), "audiences": [AUDIENCE]},
            ],
        )
        runtime = Runtime(settings)
        runtime.start()
        try:
            gate = Gate(runtime, [Rule("*", "/api/**", scopes=["read"])])
            rule = gate.rule_for("GET", "/api/x")
            key = runtime.keys.create(Actor("bench"), name="bench", scopes=["read"]).token
            now = int(time.time())
            claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": now + 3600}
            claims["scope"] = "read"
            tokens = {
                "authgate key (baseline)": key,
                "JWT RS256": jwt.encode({"alg": "RS256", "kid": "rsa"}, claims, rsa),
                "JWT ES256": jwt.encode({"alg": "ES256", "kid": "ec"}, claims, ec),
            }

            def decision(token: str) -> Callable[[], object]:
                facts = bearer(token)

                def decide() -> object:
                    verdict = run_sync(gate.decide(FactsRequest(facts), rule, "/api/x"))
                    assert verdict.principal is not None and verdict.error is None
                    return verdict

                decide()  # warms the key cache, loads the key set
                return decide

            cases = {name: decision(token) for name, token in tokens.items()}
            for name, key_of in (("JWT RS256", rsa), ("JWT ES256", ec)):
                parsed = jws.extract_compact(tokens[name].encode())
                alg = [str(parsed.headers()["alg"])]
                public = key_of.as_dict(private=False)
                verifier = type(key_of).import_key(public)
                cases[f"floor: {name[4:]} signature"] = partial(
                    jws.validate_compact, parsed, verifier, alg
                )
            results = {name: rate(call, args.seconds) for name, call in cases.items()}
        finally:
            runtime.close()
    baseline = results["authgate key (baseline)"]
    print(f"{'decisions per second':28}{'rate':>12}{'/baseline':>11}")
    for name, value in results.items():
        print(f"{name:28}{value:>12,.0f}{value / baseline:>11.3f}")


if __name__ == "__main__":
    main()

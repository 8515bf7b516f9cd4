"""Verifications per second of SigV2Verifier beside botocore signing the same request.

    .venv/bin/python bench/bench_sigv2.py [--seconds 3.0]

A header-signed S3 GET (``HmacV1Auth``) and a presigned one (``HmacV1QueryAuth``, what
boto3's ``generate_presigned_url`` makes by default), verified against the same access
key. botocore's signer builds the same string to sign and HMAC from the other side.
"""

from __future__ import annotations

import argparse
from datetime import UTC
from email.utils import parsedate_to_datetime

from bench_sigv4 import KEY, URL, as_facts, best_rates
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from authgate.s3.sigv2 import UNSIGNED_FILTERS
from authgate.sigv2 import SigV2Verifier

CREDENTIALS = Credentials(KEY.access_key_id, KEY.secret)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per side")
    args = parser.parse_args()

    header_request = AWSRequest(method="GET", url=URL, headers={"User-Agent": "bench"})
    header_signer = HmacV1Auth(CREDENTIALS)
    header_signer.add_auth(header_request)
    header_facts = as_facts(header_request)
    date = header_facts.header("date")
    assert date is not None
    moment = parsedate_to_datetime(date).astimezone(UTC)

    query_request = AWSRequest(method="GET", url=URL, headers={"User-Agent": "bench"})
    query_signer = HmacV1QueryAuth(CREDENTIALS, expires=3600)
    query_signer.add_auth(query_request)
    query_facts = as_facts(query_request)

    keys = {KEY.access_key_id: KEY}
    verifier = SigV2Verifier(keys.get, clock=lambda: moment, unsigned_params=UNSIGNED_FILTERS)
    verifier.verify(header_facts)  # proves both verify
    verifier.verify(query_facts)

    def sign_header() -> None:
        request = AWSRequest(method="GET", url=URL, headers={"User-Agent": "bench"})
        header_signer.add_auth(request)

    def sign_query() -> None:
        request = AWSRequest(method="GET", url=URL, headers={"User-Agent": "bench"})
        query_signer.add_auth(request)

    rates = best_rates(
        [
            lambda: verifier.verify(header_facts),
            sign_header,
            lambda: verifier.verify(query_facts),
            sign_query,
        ],
        args.seconds,
    )
    rows = [
        ("SigV2Verifier.verify (header GET)", rates[0]),
        ("botocore HmacV1Auth.add_auth", rates[1]),
        ("SigV2Verifier.verify (presigned GET)", rates[2]),
        ("botocore HmacV1QueryAuth.add_auth", rates[3]),
    ]
    print(f"{'operation':<38} {'ops/s':>10} {'µs/op':>8}")
    for name, value in rows:
        print(f"{name:<38} {value:>10,.0f} {1e6 / value:>8.1f}")
    print(f"{'ratio verifier/botocore (header)':<38} {rates[0] / rates[1]:>9.2f}×")
    print(f"{'ratio verifier/botocore (presigned)':<38} {rates[2] / rates[3]:>9.2f}×")


if __name__ == "__main__":
    main()

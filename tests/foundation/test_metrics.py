"""``GET /authgate/metrics`` on a real ``authgate serve``: the counters match the traffic.

Traffic of every kind (allowed, 401, 403, 429, proxied to a real upstream) goes to the
gateway; the scrape is parsed with prometheus-client's own parser. With ``--workers 2``
the requests go on fresh connections until each worker has served some (its metric file
says so), and one scrape must then sum them all.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.core import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.foundation.helpers import clean_env, serve_process
from tests.support import free_port, live_server, wait_until

METRICS = "/authgate/metrics"
CONFIG = """\
failure_rate_limit = "2/minute"

[[rules]]
path = "/admin/**"
scopes = ["write"]

[[rules]]
path = "/**"
"""
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _upstream_app() -> Starlette:
    async def answer(request: Request) -> PlainTextResponse:
        status = 404 if request.url.path.startswith("/missing") else 200
        return PlainTextResponse("upstream", status_code=status)

    return Starlette(routes=[Route("/{path:path}", answer)])


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with live_server(_upstream_app()) as url:
        yield url


def _samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _scrape(url: str, token: str) -> Samples:
    response = httpx.get(url + METRICS, headers={"X-API-Key": token}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def _key(url: str, admin: str, scopes: list[str]) -> str:
    response = httpx.post(
        url + "/authgate/v1/tokens",
        json={"name": "metrics-" + "-".join(scopes).replace(":", "-"), "scopes": scopes},
        headers={"X-API-Key": admin},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(json.loads(response.text)["token"])


def _fresh_get(url: str, path: str, headers: dict[str, str] | None = None) -> int:
    # One connection per request, so that the kernel may hand it to any worker.
    with httpx.Client(timeout=30) as client:
        return client.get(url + path, headers=headers or {}).status_code


def _decisions_by_worker(folder: Path, scratch: Path) -> dict[str, float]:
    """Allowed API-key decisions per worker, read from each worker's own metric file."""
    found = {}
    for counters in folder.glob("counter_*.db"):
        alone = scratch / counters.stem
        alone.mkdir(parents=True, exist_ok=True)
        shutil.copy(counters, alone / counters.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        total = 0.0
        for family in registry.collect():
            for sample in family.samples:
                if sample.name == "authgate_decisions_total" and sample.labels == {
                    "kind": "api_key",
                    "outcome": "allowed",
                }:
                    total += sample.value
        found[counters.stem] = total
    return found


@pytest.mark.parametrize("workers", [1, 2])
def test_the_counters_match_the_traffic_sent(tmp_path: Path, upstream: str, workers: int) -> None:
    data = tmp_path / "data"
    config = tmp_path / "authgate.toml"
    config.write_text(CONFIG)
    temp = tmp_path / "tmp"  # where serve makes its workers' metric folder
    temp.mkdir()
    port = free_port()
    args = (
        *("--data-dir", str(data), "--config", str(config), "--upstream", upstream),
        *("--workers", str(workers), "--localhost-bypass", "off"),
    )
    env = clean_env(TMPDIR=str(temp))
    with serve_process(tmp_path / "serve", port, *args, env=env) as server:
        url = server.url
        admin = (data / "admin.key").read_text().strip()
        # The first scrape comes before any other decision: one made just before it on
        # another worker could reach the metric files only after it, and so land in
        # neither "before" nor the traffic counted below.
        before = _scrape(url, admin)
        reader = _key(url, admin, ["read"])

        allowed = 0
        if workers == 1:
            for _ in range(3):
                assert _fresh_get(url, "/ok", {"X-API-Key": reader}) == 200
                allowed += 1
        else:
            # Until every worker has decided some: then the scrape must add them up.
            for _ in range(200):
                assert _fresh_get(url, "/ok", {"X-API-Key": reader}) == 200
                allowed += 1
                (folder,) = temp.glob("authgate-metrics-*")
                per_worker = _decisions_by_worker(folder, tmp_path / "scratch")
                if len(per_worker) == workers and all(per_worker.values()):
                    break
                time.sleep(0.05)  # a worker's file shows its counts within FLUSH_SECONDS
            assert len(per_worker) == workers and all(per_worker.values()), per_worker
        assert _fresh_get(url, "/missing/page", {"X-API-Key": reader}) == 404
        missing_credentials = 2
        for _ in range(missing_credentials):
            assert _fresh_get(url, "/ok") == 401
        assert _fresh_get(url, "/admin/panel", {"X-API-Key": reader}) == 403
        statuses = [
            _fresh_get(url, "/ok", {"X-API-Key": "ag_" + "x" * 40 + f"{n:02d}"}) for n in range(8)
        ]
        assert set(statuses) == {401, 429}, statuses

        expected = {
            ("authgate_decisions_total", "api_key", "allowed"): allowed + 1,
            ("authgate_decisions_total", "api_key", "forbidden"): 1,
            ("authgate_decisions_total", "none", "missing_credentials"): missing_credentials,
            ("authgate_decisions_total", "none", "invalid_token"): statuses.count(401),
            ("authgate_decisions_total", "none", "rate_limited"): statuses.count(429),
        }
        scrapes = 0
        after: Samples = {}

        def settled() -> bool:
            # A worker hands its counts on within FLUSH_SECONDS; the scraping one at once.
            nonlocal after, scrapes
            after = _scrape(url, admin)
            scrapes += 1
            return all(
                _value(after, name, kind=kind, outcome=outcome)
                - _value(before, name, kind=kind, outcome=outcome)
                == count
                for (name, kind, outcome), count in expected.items()
            )

        wait_until(settled, timeout=15, interval=0.2)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    for (name, kind, outcome), count in expected.items():
        assert delta(name, kind=kind, outcome=outcome) == count, (kind, outcome)
    decisions = "authgate_decisions_total"
    # The key's creation and each scrape are admin-key decisions; the last scrape's is
    # counted before it answers, another worker's within FLUSH_SECONDS.
    assert 1 <= delta(decisions, kind="admin_key", outcome="allowed") <= 1 + scrapes
    if workers == 1:
        assert scrapes == 1
        assert delta(decisions, kind="admin_key", outcome="allowed") == 2
        assert statuses.count(429) == 6  # two failures allowed a minute, per worker
    assert delta("authgate_rate_limited_total", limit="authgate-auth-failures") == (
        statuses.count(429)
    )
    every_decision = sum(
        value - _value(before, name, **dict(labels))
        for (name, labels), value in after.items()
        if name == decisions
    )
    assert delta("authgate_decision_seconds_count") == every_decision
    assert delta("authgate_decision_seconds_bucket", le="+Inf") == every_decision
    assert delta("authgate_upstream_responses_total", status="200") == allowed
    assert delta("authgate_upstream_responses_total", status="404") == 1
    assert delta("authgate_upstream_seconds_count") == allowed + 1
    assert delta("authgate_upstream_failures_total", reason="error") == 0
    # No label carries a key id, a token or a path.
    text = "\n".join(f"{name}{labels}" for name, labels in after)
    assert reader not in text and admin not in text and "/ok" not in text
    assert not list(temp.glob("authgate-metrics-*")), "the metric folder outlived the server"


def test_cache_hits_and_store_calls_are_counted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    args = ("--data-dir", str(data), "--localhost-bypass", "off")
    with serve_process(tmp_path / "serve", port, *args) as server:
        url = server.url
        admin = (data / "admin.key").read_text().strip()
        reader = _key(url, admin, ["read"])
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/authgate/v1/whoami", headers={"X-API-Key": reader}).is_success
            before = _scrape(url, admin)
            for _ in range(5):
                response = client.get("/authgate/v1/whoami", headers={"X-API-Key": reader})
                assert response.status_code == 200
            after = _scrape(url, admin)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    lookups = "authgate_cache_lookups_total"
    # The key is in memory since the first call: five hits, and only the admin key's own
    # look-up (it asks the same memory first) is a miss.
    assert delta(lookups, cache="api_key", result="hit") == 5
    assert delta(lookups, cache="api_key", result="miss") == 1
    # The first call read the key from the store, and creating it wrote there.
    assert _value(before, "authgate_store_seconds_count") > 0
    assert _value(after, "authgate_store_errors_total", operation="find_key_by_digest") == 0


def test_who_may_read_the_metrics(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    static = "s" * 40
    env = clean_env(AUTHGATE_TOKENS=static)
    # Listening on loopback alone: the bypass is on ("auto").
    args = ("--data-dir", str(data))
    with serve_process(tmp_path / "serve", port, *args, env=env) as server:
        url = server.url
        admin = (data / "admin.key").read_text().strip()
        reader = _key(url, admin, ["read"])
        scraper = _key(url, admin, ["metrics:read"])

        def status(headers: dict[str, str]) -> int:
            return httpx.get(url + METRICS, headers=headers, timeout=30).status_code

        # A local peer of our own user, as the bypass admits it elsewhere.
        assert status({}) == 200
        # A relayed request is nobody's local one: no credential is a 401.
        assert status({"X-Forwarded-For": "203.0.113.9"}) == 401
        assert status({"Forwarded": "for=203.0.113.9"}) == 401
        assert status({"X-Forwarded-For": "203.0.113.9", "X-API-Key": scraper}) == 200
        # A credential without the scope is refused, even from a local peer.
        assert status({"X-API-Key": reader}) == 403
        # The "*" of static tokens is the application's scopes, not authgate's.
        assert status({"Authorization": f"Bearer {static}"}) == 403
        assert status({"X-API-Key": "ag_notavalidtoken"}) == 401
        assert status({"X-API-Key": scraper}) == 200
        assert status({"X-API-Key": admin}) == 200
        # Not another method, nor another spelling that the bypass would admit.
        assert httpx.post(url + METRICS, timeout=30).status_code in (401, 405)
        assert httpx.get(url + "/authgate/v1/whoami", timeout=30).status_code == 401

"""The read API under hostile input: injection-shaped, traversing, huge, unicode, NUL and
out-of-range parameters each get their exact 4xx and error code (never a 500, never an echo of
the whole input); every route refuses every writing method with a JSON 405; every list is
bounded by `limit` <= MAX_LIMIT.

Schemathesis (`test_api_schemathesis.py`) explores the document at random; these are the cases
an attacker tries first, pinned.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from starlette.routing import Route

from aop.api.app import create_app
from aop.api.params import MAX_LIMIT
from tests.integration import test_api
from tests.integration.test_api import GOOD_WALLET, Seed, assert_error, b58

# the fixtures of test_api.py, by name (`seeded`, module-scoped, is in conftest.py)
client_factory = test_api.client_factory
client = test_api.client

#: an error message quotes at most a bounded prefix of what it got.
MESSAGE_MAX = 300
#: long parameters, under httpx's 64 KiB URL limit (uvicorn refuses longer request lines).
HUGE = 50_000


def _q(text: str) -> str:
    """`text` as one percent-encoded path segment (slashes included)."""
    return quote(text, safe="")


HOSTILE = [
    # SQL-injection-shaped names and wallets: parameters, never SQL text
    (f"/v1/channels/{_q(chr(39) + ' OR 1=1--')}", 404, "channel_not_found"),
    (f"/v1/channels/{_q('alpha; DROP TABLE roots;--')}", 404, "channel_not_found"),
    (f"/v1/channels/{_q('x UNION SELECT root FROM roots')}/roots", 404, "channel_not_found"),
    (f"/v1/channels/{_q(chr(39) + ' OR 1=1--')}/claims/{GOOD_WALLET}", 404, "channel_not_found"),
    (f"/v1/channels/alpha/claims/{_q(chr(39) + ' OR 1=1--')}", 400, "bad_wallet"),
    (f"/v1/wallets/{_q('1 OR 1=1')}/claims", 400, "bad_wallet"),
    ("/v1/channels?after=" + _q("' OR ''='"), 400, "bad_after"),
    ("/v1/roots/alpha/1/dataset?format=" + _q("json;DROP TABLE leaves"), 400, "bad_format"),
    # path traversal: a decoded slash never lands in a parameter; no route matches
    (f"/v1/channels/{_q('../../etc/passwd')}", 404, "not_found"),
    (f"/v1/roots/{_q('../../etc')}/1/dataset", 404, "not_found"),
    (f"/v1/channels/alpha/claims/{_q('../../../etc/passwd')}", 404, "not_found"),
    ("/v1/channels/alpha/roots/..%2F1", 404, "not_found"),
    ("/v1/../../etc/passwd", 404, "not_found"),
    ("/v1/channels/..", 404, "not_found"),  # the client resolves it to /v1
    # very long parameters
    ("/v1/channels/" + "a" * HUGE, 400, "bad_channel"),
    (f"/v1/channels/alpha/claims/{'1' * HUGE}", 400, "bad_wallet"),
    ("/v1/channels/alpha/roots/" + "9" * HUGE, 400, "bad_root_seq"),
    ("/v1/channels?limit=" + "9" * HUGE, 400, "bad_limit"),
    ("/v1/channels?after=" + "a" * HUGE, 400, "bad_after"),
    ("/v1/channels/alpha/roots?before=" + "1" * HUGE, 400, "bad_before"),
    ("/v1/roots/alpha/1/dataset?format=" + "j" * HUGE, 400, "bad_format"),
    # unicode
    ("/v1/channels/" + _q("çhannel"), 400, "bad_channel"),
    ("/v1/channels/" + _q("\u202ealpha"), 400, "bad_channel"),  # right-to-left override
    (f"/v1/channels/alpha/claims/{_q('ℓ' * 32)}", 400, "bad_wallet"),
    ("/v1/channels/alpha/roots/" + _q("٣"), 400, "bad_root_seq"),  # an Arabic-Indic digit
    ("/v1/channels?limit=" + _q("１０"), 400, "bad_limit"),
    ("/v1/channels/alpha/roots?before=" + _q("²"), 400, "bad_before"),
    # NUL bytes
    (f"/v1/channels/alpha/claims/{'%00' * 32}", 400, "bad_wallet"),
    ("/v1/channels?limit=1%00", 400, "bad_limit"),
    ("/v1/channels?after=%00", 400, "bad_after"),
    ("/v1/channels/alpha/roots?before=%00", 400, "bad_before"),
    ("/v1/channels/alpha/roots/1%00", 400, "bad_root_seq"),
    ("/v1/roots/alpha/1/dataset?format=json%00", 400, "bad_format"),
    # negative, overflowing and non-decimal integers
    ("/v1/channels/alpha/roots/18446744073709551616", 400, "bad_root_seq"),
    ("/v1/channels/alpha/roots/+1", 400, "bad_root_seq"),
    ("/v1/channels/alpha/roots/0x10", 400, "bad_root_seq"),
    ("/v1/channels/alpha/roots/1e3", 400, "bad_root_seq"),
    (f"/v1/channels/alpha/roots/-1/claims/{GOOD_WALLET}", 400, "bad_root_seq"),
    ("/v1/roots/alpha/-9223372036854775808/dataset", 400, "bad_root_seq"),
    ("/v1/channels/alpha/roots?before=-1", 400, "bad_before"),
    ("/v1/channels/alpha/roots?before=9223372036854775808", 400, "bad_before"),
    ("/v1/channels?limit=-1", 400, "bad_limit"),
    ("/v1/channels?limit=%201", 400, "bad_limit"),
    ("/v1/channels?limit=1.0", 400, "bad_limit"),
    # pagination
    (f"/v1/channels?limit={MAX_LIMIT + 1}", 400, "bad_limit"),
    (f"/v1/channels/alpha/roots?limit={MAX_LIMIT + 1}", 400, "bad_limit"),
    (f"/v1/wallets/{GOOD_WALLET}/claims?limit={MAX_LIMIT + 1}", 400, "bad_limit"),
    ("/v1/channels?limit=5&limit=5000", 400, "bad_limit"),  # the last one counts
    (f"/v1/wallets/{GOOD_WALLET}/claims?after=" + _q("alpha"), 400, "bad_after"),
    ("/v1/channels/alpha/roots?before=", 400, "bad_before"),
]


@pytest.mark.parametrize(("url", "status", "code"), HOSTILE)
async def test_hostile_parameter_gets_its_exact_status_code_and_a_bounded_message(
    client: httpx.AsyncClient, url: str, status: int, code: str
) -> None:
    error = assert_error(await client.get(url), status, code)
    assert 0 < len(error["message"]) <= MESSAGE_MAX


async def test_injection_shaped_requests_leave_the_data_intact(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    before = (await client.get("/v1/channels/alpha/roots")).json()
    for url, _, _ in HOSTILE[:8]:
        await client.get(url)
    assert (await client.get("/v1/channels/alpha/roots")).json() == before
    assert [r["root_seq"] for r in before["roots"]] == [5, 4, 3, 2, 1]


# -- read-only ----------------------------------------------------------------------------------

WRITING_METHODS = ("POST", "PUT", "PATCH", "DELETE", "TRACE")
#: POST /v1/verify computes (a proof against a root) and stores nothing.
COMPUTING = {("POST", "/v1/verify")}
#: every route, with real path parameters; a route missing here fails the test below.
ROUTE_URLS = {
    "/v1/channels/{channel}/claims/{wallet}": "/v1/channels/alpha/claims/{wallet}",
    "/healthz": "/healthz",
    "/readyz": "/readyz",
    "/metrics": "/metrics",
    "/openapi.json": "/openapi.json",
    "/docs": "/docs",
    "/v1/channels": "/v1/channels",
    "/v1/channels/{channel}": "/v1/channels/alpha",
    "/v1/channels/{channel}/roots": "/v1/channels/alpha/roots",
    "/v1/channels/{channel}/roots/{root_seq}": "/v1/channels/alpha/roots/5",
    "/v1/channels/{channel}/roots/{root_seq}/claims/{wallet}": (
        "/v1/channels/alpha/roots/5/claims/{wallet}"
    ),
    "/v1/wallets/{wallet}/claims": "/v1/wallets/{wallet}/claims",
    "/v1/roots/{channel}/{root_seq}/dataset": "/v1/roots/alpha/5/dataset",
    "/v1/verify": "/v1/verify",
    "/v1/claims/{wallet}": "/v1/claims/{wallet}",
    "/v1/global/claims/{wallet}": "/v1/global/claims/{wallet}",
    "/v1/global": "/v1/global",
    "/v1/global/roots": "/v1/global/roots",
    "/v1/global/roots/{root_seq}": "/v1/global/roots/1",
}


def test_every_route_is_listed_for_the_read_only_check(seeded: Seed) -> None:
    app = create_app(seeded.settings)
    paths = {route.path for route in app.routes if isinstance(route, Route)}
    assert paths == set(ROUTE_URLS)


async def test_every_route_refuses_writing_methods_with_a_json_405(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    wallet = b58(sorted(seeded.roots["Alpha"][5])[0])
    refused = 0
    for path, template in ROUTE_URLS.items():
        url = template.format(wallet=wallet)
        for method in WRITING_METHODS:
            if (method, path) in COMPUTING:
                continue
            response = await client.request(method, url, json={"x": 1})
            error = assert_error(response, 405, "method_not_allowed")
            assert error["message"].startswith(f"{method} is not allowed here"), (method, url)
            refused += 1
    assert refused == len(ROUTE_URLS) * len(WRITING_METHODS) - len(COMPUTING)


# -- bounded lists ----------------------------------------------------------------------------

#: every endpoint answering a list, and the key of its items.
LIST_URLS = {
    "/v1/channels": "channels",
    "/v1/channels/alpha/roots": "roots",
    "/v1/wallets/{wallet}/claims": "claims",
}


@pytest.mark.parametrize(("template", "key"), sorted(LIST_URLS.items()))
async def test_every_list_holds_at_most_limit_items_and_refuses_more_than_the_maximum(
    seeded: Seed, client: httpx.AsyncClient, template: str, key: str
) -> None:
    shared = set(seeded.roots["Alpha"][5]) & set(seeded.roots["beta"][7])
    url = template.format(wallet=b58(min(shared)))
    whole = (await client.get(f"{url}?limit={MAX_LIMIT}")).json()[key]
    assert 2 <= len(whole) <= MAX_LIMIT
    assert len((await client.get(f"{url}?limit=1")).json()[key]) == 1
    for limit in (MAX_LIMIT + 1, 10**6, 2**64):
        assert_error(await client.get(f"{url}?limit={limit}"), 400, "bad_limit")


@pytest.mark.parametrize("declared", [b"\xb2", b"9" * 5000])
async def test_verify_with_a_garbled_content_length_is_not_a_500(
    client: httpx.AsyncClient, declared: bytes
) -> None:
    """ "²" is a digit to `str.isdigit` but not to `int` (latin-1 header bytes reach the app)."""
    headers = {"content-type": "application/json", "content-length": declared}
    response = await client.post("/v1/verify", content=b"{}", headers=headers)
    code = "body_too_large" if declared.isdigit() else "missing_field"  # read as usual
    assert_error(response, 413 if declared.isdigit() else 400, code)

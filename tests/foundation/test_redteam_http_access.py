"""Red team, HTTP: no key reaches another platform's objects, or outside its role, by any route or spelling.

Two platforms (tenants), each with a platform, a buyer and an archivist key. Every route is tried with
every key that may not use it, with ids guessed, re-spelt (case, braces, URN, percent-encoding, double
encoding, NUL, dot segments, doubled or trailing slashes), with HEAD, OPTIONS and method-override
headers. Nothing may succeed, nothing may answer 5xx, and every refusal that names an object or a role
is journalled.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from bidproc.config import ClamdSettings
from tests.foundation.redteam_http import journal_count, raw_exchange, status_of
from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, tender

ROLES = ("platform", "buyer", "archivist")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {tender}, {bid} and {name} are filled in
    roles: frozenset[str]
    body: Any = None

    def url(self, tender: str, bid: str, name: str = "offre.txt") -> str:
        return self.path.format(tender=tender, bid=bid, name=name)


def _route(method: str, path: str, roles: str, body: Any = None) -> Route:
    return Route(method, path, frozenset(roles.split()), body)


ROUTES = [
    _route("GET", "/v1/tenders/{tender}", "platform buyer"),
    _route("PATCH", "/v1/tenders/{tender}", "buyer", {"contract": {"kind": "supplies_services"}}),
    _route("POST", "/v1/tenders/{tender}/bids", "platform", {"bidder": "intrus"}),
    _route("POST", "/v1/tenders/{tender}/open", "buyer", {"shares": []}),
    _route("GET", "/v1/tenders/{tender}/opening", "buyer"),
    _route("PUT", "/v1/bids/{bid}/files/{name}", "platform", b"intrus"),
    _route("PUT", "/v1/bids/{bid}/backup/{name}", "platform", b"intrus"),
    _route("POST", "/v1/bids/{bid}/submit", "platform"),
    _route("GET", "/v1/bids/{bid}", "platform"),
    _route("GET", "/v1/bids/{bid}/receipt", "platform"),
    _route("GET", "/v1/bids/{bid}/receipt.tsr", "platform"),
    _route("GET", "/v1/bids/{bid}/receipt.p7s", "platform"),
    _route("GET", "/v1/bids/{bid}/files", "buyer"),
    _route("GET", "/v1/bids/{bid}/files/{name}", "buyer"),
    _route("GET", "/v1/bids/{bid}/sealed/{name}", "buyer"),
    _route("GET", "/v1/bids/{bid}/reports/{name}.json", "buyer"),
    _route("GET", "/v1/bids/{bid}/evidence.zip", "archivist"),
]


@dataclass
class World:
    stack: Stack
    keys: dict[tuple[str, str], httpx.Client]  # (tenant, role) -> client
    tender: str  # tenant "a"'s
    draft: str  # a bid of "a" with a file, not submitted
    bid: str  # a submitted bid of "a"

    def send(self, who: httpx.Client, route: Route, url: str, **extra: Any) -> httpx.Response:
        body = route.body
        kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"content": body}
        return who.request(route.method, url, **kwargs, **extra)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, clamd_settings: ClamdSettings,
          postgres_url: str, redis_url: str) -> Iterator[World]:
    stack = Stack(tmp_path_factory.mktemp("access"), s3_endpoint, clamd_settings,
                  env={"BIDPROC_API_AUTH_MAX_FAILURES": "100000"})
    keys = {(t, r): client(stack, f"ville-{t}", r) for t in "ab" for r in ROLES}
    t = tender(stack, keys["a", "platform"])
    draft = deposit(keys["a", "platform"], t["id"], {"offre.txt": b"offre"}, submit=False)
    bid = deposit(keys["a", "platform"], t["id"], {"offre.txt": b"offre"})
    yield World(stack, keys, t["id"], draft, bid)
    stack.close()


def _refused(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.request.method, r.request.url, r.status_code, r.text[:300])
    if r.status_code >= 400:
        body = r.json()
        assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), r.text


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_key_outside_its_role_is_refused_and_journalled(world: World, route: Route) -> None:
    for role in set(ROLES) - route.roles:
        for bid in (world.draft, world.bid):
            before = journal_count(world.stack, "access.forbidden_role")
            r = world.send(world.keys["a", role], route, route.url(world.tender, bid))
            _refused(r, 403)
            assert r.json()["code"] == "auth.forbidden_role", (role, r.text)
            assert journal_count(world.stack, "access.forbidden_role") == before + 1, (role, route)
    # nothing was changed by the refused attempts
    platform = world.keys["a", "platform"]
    assert [f["name"] for f in platform.get(f"/v1/bids/{world.draft}").json()["files"]] == ["offre.txt"]
    assert platform.get(f"/v1/bids/{world.draft}").json()["status"] == "draft"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_another_platforms_objects_are_not_found_for_every_key_and_journalled(world: World, route: Route) -> None:
    for role in route.roles:
        stranger = world.keys["b", role]
        for bid in (world.draft, world.bid):
            before = journal_count(world.stack, "access.denied")
            r = world.send(stranger, route, route.url(world.tender, bid))
            _refused(r, 404)
            assert r.json()["code"] in {"tender.not_found", "bid.not_found"}, (role, r.text)
            assert journal_count(world.stack, "access.denied") == before + 1, (role, route, bid)


def _spellings(object_id: str) -> list[str]:
    """Ways to write an id that are not the id, as path segments ready to send (each is nobody's object)."""
    u = uuid.UUID(object_id)
    texts = [
        object_id.upper(), "{" + object_id + "}", u.urn, u.hex, object_id + " ", " " + object_id,
        object_id + "\x00", object_id + "\n", object_id.replace("-", "\u2010"),  # NUL, newline, Unicode hyphen
        object_id.replace("a", "\uff41").replace("1", "\uff11"),  # full-width letters and digits
        object_id.replace("e", "\u0435"),  # Cyrillic e, looks the same
        object_id.replace("-", ""), object_id[:-1], object_id + "0",
        str(uuid.UUID(int=u.int ^ 1)),  # a neighbour: guessing
        "../" + object_id, object_id + "/..",
    ]
    # a look-alike substitution changes nothing when the random id lacks that character: it is the id then
    encoded = [quote(t, safe="") for t in texts if t != object_id]
    return [*encoded, quote(quote(object_id, safe=""), safe="").replace("-", "%252D"),  # double encoded
            object_id.replace("-", "%252D"), object_id + "%2500", object_id.upper().replace("-", "%2d")]


def _every_byte_encoded(object_id: str) -> str:
    return "".join(f"%{b:02X}" for b in object_id.encode())


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_respelt_ids_never_reach_another_platforms_objects(world: World, route: Route) -> None:
    stranger = world.keys["b", sorted(route.roles)[0]]
    owner = world.keys["a", sorted(route.roles)[0]]
    target = world.tender if "{tender}" in route.path else world.bid
    for spelt in _spellings(target):
        for who in (stranger, owner):
            before = journal_count(world.stack, "access.denied")
            r = world.send(who, route, route.url(spelt, spelt))
            _refused(r, 404)
            if r.json()["code"] in {"tender.not_found", "bid.not_found"}:
                assert journal_count(world.stack, "access.denied") == before + 1, (spelt, route)
    # every byte percent-encoded is the id itself once decoded: still another platform's
    r = world.send(stranger, route, route.url(_every_byte_encoded(world.tender), _every_byte_encoded(world.bid)))
    _refused(r, 404)


def test_the_owner_reads_its_bid_by_a_percent_encoded_id(world: World) -> None:
    owner = world.keys["a", "platform"]
    assert owner.get(f"/v1/bids/{_every_byte_encoded(world.bid)}").json()["id"] == world.bid


TRICKS: list[tuple[str, str, dict[str, str]]] = [
    # (method, path suffix or template change, headers): each sent with a key outside the route's role
    ("HEAD", "", {}),
    ("OPTIONS", "", {}),
    ("POST", "", {"X-HTTP-Method-Override": "{method}"}),
    ("GET", "", {"X-HTTP-Method-Override": "{method}", "X-Method-Override": "{method}"}),
    ("{method}", "/", {}),
    ("{method}", "?_method={method}", {}),
    ("{method}", "/.", {}),
    ("{method}", "%2F", {}),
    ("{method}", ";x=1", {}),
]


def _raw_path(world: World, route: Route) -> str:
    return route.url(world.tender, world.draft)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_no_method_or_path_trick_gets_past_a_role(world: World, route: Route) -> None:
    for role in set(ROLES) - route.roles:
        key = world.keys["a", role]
        for method, suffix, headers in TRICKS:
            verb = method.format(method=route.method)
            if any(r.path == route.path and r.method == verb and role in r.roles for r in ROUTES):
                continue  # another route of the same path, open to this role (a platform GETs a tender)
            sent = {k: v.format(method=route.method) for k, v in headers.items()}
            before = journal_count(world.stack, "access.forbidden_role")
            r = key.request(verb, _raw_path(world, route) + suffix.format(method=route.method), headers=sent,
                            **({"json": route.body} if isinstance(route.body, dict) and verb != "HEAD" else {}))
            assert r.status_code < 500 and not 200 <= r.status_code < 300, (verb, suffix, role, r.text[:200])
            if r.status_code == 403:
                assert journal_count(world.stack, "access.forbidden_role") == before + 1, (verb, suffix, role)
            if verb != "HEAD" and r.status_code >= 400:
                _refused(r, r.status_code)
        # dot segments and doubled slashes, sent as they are (no client normalises them away)
        token = key.headers["Authorization"]
        for path in (route.path.replace("/v1/", "/v1/x/../", 1), route.path.replace("/v1/", "/v1//", 1),
                     route.path.replace("/v1/", "/v1/./", 1), route.path.replace("/v1/", "/V1/", 1)):
            path = path.format(tender=world.tender, bid=world.draft, name="offre.txt")
            answer = raw_exchange(world.stack.port, f"{route.method} {path} HTTP/1.1\r\nHost: x\r\n"
                                  f"Authorization: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            assert 400 <= status_of(answer) < 500 or status_of(answer) in {301, 307, 308}, (path, answer[:200])


def test_a_trailing_slash_is_not_found_and_never_redirects_by_the_host_header(world: World) -> None:
    token = world.keys["a", "platform"].headers["Authorization"]
    for route in ROUTES:
        path = route.url(world.tender, world.draft) + "/"
        answer = raw_exchange(world.stack.port, f"{route.method} {path} HTTP/1.1\r\nHost: evil.example\r\n"
                              f"Authorization: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        assert status_of(answer) == 404 and b"evil.example" not in answer, (path, answer[:300])
        assert b'"code":"request.not_found"' in answer, answer[:300]


def test_no_key_no_answer(world: World) -> None:
    anonymous = httpx.Client(base_url=f"http://127.0.0.1:{world.stack.port}")
    for route in ROUTES:
        for bid in (world.draft, world.bid):
            r = world.send(anonymous, route, route.url(world.tender, bid))
            _refused(r, 401)
            assert r.json()["code"] == "auth.missing"


@pytest.mark.parametrize("body", [b"{", b"[", b"\xff", b"\xff\xfe{}", b"{\"deadline\": ", b"null", b"\x00"])
def test_a_malformed_body_does_not_hide_a_role_refusal(world: World, body: bytes) -> None:
    platform = world.keys["a", "platform"]
    for route in ("/v1/tenders/{tender}", "/v1/tenders/{tender}/open"):
        method = "PATCH" if route.endswith("}") else "POST"
        before = journal_count(world.stack, "access.forbidden_role")
        r = platform.request(method, route.format(tender=world.tender), content=body,
                             headers={"content-type": "application/json"})
        _refused(r, 403)
        assert journal_count(world.stack, "access.forbidden_role") == before + 1
    anonymous = httpx.Client(base_url=f"http://127.0.0.1:{world.stack.port}")
    r = anonymous.post("/v1/tenders", content=body, headers={"content-type": "application/json"})
    _refused(r, 401)

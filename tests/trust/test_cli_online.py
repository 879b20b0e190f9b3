"""``bidproc trust refresh`` / ``show`` against lists served over loopback HTTP: fetched, verified,
cached; a bad download later keeps the last good copy; ``verify --lotl URL --offline`` uses the cache."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bidproc.cli import main
from tests.services import free_port
from tests.trust.builder import Service, lotl, make_cert, national_list, sign_list

PAGES: dict[str, bytes] = {}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"not found")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


def test_refresh_show_and_last_good_copy(base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signer, tlso = make_cert("LOTL signer"), make_cert("FR TLSO")
    fr = sign_list(national_list("FR", [Service(make_cert("QCA", ca=True), "Qualified CA service")]), tlso)
    pointers = [("FR", f"{base}/fr.xml", [tlso]), ("DE", f"{base}/de.xml", [tlso])]
    PAGES.update({"/lotl.xml": sign_list(lotl(pointers), signer), "/fr.xml": fr})
    (tmp_path / "signer.pem").write_bytes(signer.pem)
    monkeypatch.setenv("BIDPROC_SIGNATURE_LOTL_SIGNER_FILES", str(tmp_path / "signer.pem"))
    monkeypatch.setenv("BIDPROC_SERVICE_DATA_DIR", str(tmp_path / "var"))
    url = f"{base}/lotl.xml"

    code, _ = _run("trust", "refresh", "--lotl", url)
    assert code == 1  # DE answers 404: reported
    code, out = _run("trust", "show", "--lotl", url, "--offline", "--format", "json")
    shown = {s["territory"]: s for s in json.loads(out)}
    assert shown["EU"]["signature"] == "valid" and shown["EU"]["fetched_at"]
    assert shown["FR"]["signature"] == "valid" and shown["FR"]["used"] and shown["FR"]["fetched_at"]
    assert shown["FR"]["next_update"]
    assert (tmp_path / "var" / "trusted-lists").is_dir()

    # the server now serves a tampered FR list: refresh reports it, the cached good copy stays in use
    PAGES["/fr.xml"] = fr.replace(b"Qualified CA service", b"Rogue CA service", 1)
    code, _ = _run("trust", "refresh", "--lotl", url)
    assert code == 1
    code, out = _run("trust", "show", "--lotl", url, "--offline", "--format", "json")
    shown = {s["territory"]: s for s in json.loads(out)}
    assert shown["FR"]["signature"] == "valid" and shown["FR"]["used"]

    # offline show without a cached copy of another LOTL: nothing to show, exit 1, no crash
    code, out = _run("trust", "show", "--lotl", f"{base}/other.xml", "--offline")
    assert code == 1 and "no trusted list" in out

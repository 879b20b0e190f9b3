"""``GET /verify``: a page where a legal team drops a signed file and reads the report (issue 12).

Off unless ``api.verify_page`` is set: it validates files from anyone who can reach it, so it has its
own bounds: ``api.verify_page_max_bytes`` (413 ``size.too_large``) and ``api.verify_page_per_minute``
per client address (429 ``quota.rate``). Nothing of the file is kept: the body is read into memory
(never spooled to disk), validated as the pipeline validates (same code, same bounds), and the
answer carries the HTML report with its PDF (sealed) and ETSI XML forms as downloads in the page.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartParser

from bidproc.api.guards import UploadRate
from bidproc.errors import BidprocError, Code
from bidproc.runtime import Runtime

LANGS = ("fr", "en")
MAX_DETACHED = 20


class _InMemory(MultiPartParser):
    spool_max_size = 1 << 40  # files stay in memory (the body is already bounded): nothing touches the disk


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("bidproc.api", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),  # file names are hostile
        undefined=StrictUndefined,
    )


def _lang(value: Any) -> str:
    return value if value in LANGS else "fr"


def _page(lang: str, status: int = 200, **values: Any) -> HTMLResponse:
    html = _environment().get_template("verify.html.j2").render(lang=lang, fr=lang == "fr", **values)
    return HTMLResponse(html, status_code=status)


def verify_router(rt: Runtime) -> APIRouter:
    api = rt.settings.api
    router = APIRouter(tags=["verification page"])
    rate = UploadRate(api.verify_page_per_minute)

    @router.get("/verify", response_class=HTMLResponse)
    def form(lang: str = "fr") -> HTMLResponse:
        return _page(_lang(lang), max_mb=api.verify_page_max_bytes // (1 << 20))

    @router.post("/verify", response_class=HTMLResponse)
    async def verify(request: Request) -> HTMLResponse:
        client = request.client.host if request.client else "unknown"
        rate.take(client)
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit() or int(declared) > api.verify_page_max_bytes:
            raise BidprocError(Code.SIZE_TOO_LARGE, f"at most {api.verify_page_max_bytes} bytes per verification")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > api.verify_page_max_bytes:
                raise BidprocError(Code.SIZE_TOO_LARGE, f"at most {api.verify_page_max_bytes} bytes per verification")

        async def replay() -> AsyncGenerator[bytes, None]:
            yield bytes(body)

        try:
            form = await _InMemory(request.headers, replay(), max_files=MAX_DETACHED + 1, max_fields=10).parse()
        except Exception as exc:  # not multipart, or malformed: the client's request, not our fault
            raise BidprocError(Code.REQUEST_INVALID, f"expected a form with a file: {exc}") from None
        lang = _lang(form.get("lang"))
        main = form.get("file")
        if not isinstance(main, UploadFile) or not main.filename:
            return _page(lang, 400, max_mb=api.verify_page_max_bytes // (1 << 20), error="no_file")
        data = await main.read()
        detached = {
            part.filename: await part.read()
            for part in form.getlist("detached")
            if isinstance(part, UploadFile) and part.filename
        }
        forms = await run_in_threadpool(_reports, rt, main.filename, data, detached, lang)
        return _page(lang, max_mb=api.verify_page_max_bytes // (1 << 20), **forms)

    return router


def _reports(rt: Runtime, name: str, data: bytes, detached: dict[str, bytes], lang: Any) -> dict[str, Any]:
    """The HTML report (shown), the sealed PDF and the ETSI XML (offered as downloads)."""
    from bidproc.signature.reports.etsi_xml import render_xml
    from bidproc.signature.reports.html import render_html
    from bidproc.signature.reports.pdf import render_sealed_pdf
    from bidproc.signature.reports.subject import Subject
    from bidproc.signature.validate import validate_file

    now = rt.clock()  # one reading: the validation time (as the pipeline's, not a point in the past) and the report's
    report = validate_file(name, data, rt.validation_policy(), detached, now=now)
    subject = Subject.of(report, data, now, detached)
    pdf = render_sealed_pdf(subject, lang, rt.local_pki, rt.tsa, tsa_roots=rt.tsa_roots)
    return {
        "report_html": render_html(subject, lang),
        "verdict": report.bottom_line,
        "file_name": name,
        "pdf_href": "data:application/pdf;base64," + base64.b64encode(pdf).decode(),
        "xml_href": "data:application/xml;base64," + base64.b64encode(render_xml(subject)).decode(),
        "stem": name.rsplit(".", 1)[0] or "report",
    }

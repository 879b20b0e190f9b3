"""The HTTP server's own refusals in the API's shape: requests too malformed to ever reach the app.

uvicorn answers a request its parser refuses (a chunk size that is not hexadecimal, more chunk data
than announced, a header that is not HTTP) by itself, in plain text. A client reads one error shape
from bidproc: this is the same 400, as ``request.invalid`` in ``{code, message}``.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bidproc.errors import Code, http_status


class JsonErrorsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (its default when httptools is installed, as bidproc requires).

    A request cut off by the error (a broken chunk) is answered 400 and its connection closed: the app
    reads the disconnect, and the upload stores nothing.
    """

    def send_400_response(self, msg: str) -> None:
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not cycle.more_body and not cycle.response_complete:
            # What broke follows a whole request (a body longer than its Content-Length): that request is
            # answered as it deserves, then the connection closes. A 400 now would tell the client its
            # upload failed while it is being stored.
            cycle.keep_alive = False
            return
        body = json.dumps({"code": Code.REQUEST_INVALID.value, "message": f"malformed HTTP request: {msg}"}).encode()
        head = [f"HTTP/1.1 {http_status(Code.REQUEST_INVALID)} Bad Request\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json\r\n", f"content-length: {len(body)}\r\n".encode(),
                 b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

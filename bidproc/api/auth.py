"""Who is calling: the API key's tenant and role, as FastAPI dependencies (one per set of roles).

A valid key always works (platforms behind one address must not be locked out by another's attempts);
past its budget of failures a client's wrong keys answer ``429 auth.throttled`` and are no longer
journalled one by one: the journal records the moment it became throttled instead. A valid key used
outside its role answers ``403 auth.forbidden_role`` and the attempt is journalled.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from bidproc.api.guards import FailureThrottle
from bidproc.desk.tenants import Caller, Role, identify, journal_throttled, require_role
from bidproc.errors import BidprocError, Code
from bidproc.runtime import Runtime

BEARER = HTTPBearer(auto_error=False, description="An API key (bidproc apikey create --role platform|buyer|archivist)")


def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None
) -> Caller:
    rt: Runtime = request.app.state.runtime
    throttle: FailureThrottle = request.app.state.auth_throttle
    client = request.client.host if request.client else "unknown"
    over = throttle.over_budget(client)
    try:
        return identify(rt.db, credentials.credentials.strip() if credentials else None, rt.clock(), not over)
    except BidprocError as exc:
        if exc.code is not Code.AUTH_DENIED:
            raise
        if throttle.failed(client):
            journal_throttled(rt.db, client, throttle.max_failures, rt.clock())
        throttle.check(client)  # raises auth.throttled once over budget
        raise


class RoleCheck:
    """The dependency that admits only ``roles``: refused attempts answer ``auth.forbidden_role``, journalled."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    def __call__(self, request: Request, who: Annotated[Caller, Depends(caller)]) -> Caller:
        rt: Runtime = request.app.state.runtime
        route = request.scope.get("route")
        action = f"{request.method} {getattr(route, 'path', request.url.path)}"
        require_role(rt.db, who, self.roles, action, rt.clock())
        return who


def with_role(*roles: Role) -> RoleCheck:
    return RoleCheck(frozenset(roles))


def role_check_of(dependant: Any) -> RoleCheck | None:
    """The route's RoleCheck, however deep among its dependencies (None: a route open to every key)."""
    for sub in getattr(dependant, "dependencies", []):
        if isinstance(sub.call, RoleCheck):
            return sub.call
        found = role_check_of(sub)
        if found is not None:
            return found
    return None


async def authorise(request: Request) -> None:
    """Run the route's key and role checks now, for an answer that comes before its dependencies would
    (a body that is not JSON): a key outside its role is refused and journalled as such all the same."""
    check = role_check_of(getattr(request.scope.get("route"), "dependant", None))
    if check is None:
        return
    credentials = await BEARER(request)
    who = await run_in_threadpool(caller, request, credentials)
    await run_in_threadpool(check, request, who)


def _tenant_of(who: Annotated[Caller, Depends(with_role(Role.PLATFORM))]) -> str:
    return who.tenant


def _reader_tenant(who: Annotated[Caller, Depends(with_role(Role.PLATFORM, Role.BUYER))]) -> str:
    return who.tenant


Tenant = Annotated[str, Depends(_tenant_of)]  # the platform role: deposits
Reader = Annotated[str, Depends(_reader_tenant)]  # platform or buyer: reading a tender
Buyer = Annotated[Caller, Depends(with_role(Role.BUYER))]  # deadlines, the opening, opened documents

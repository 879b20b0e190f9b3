"""Operator commands: serve, up, config, apikey, journal, migrate (``bidproc demo`` is in demo.py, which
uses the settings helpers here; nothing here imports it back)."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from bidproc.cli import Exit, command
from bidproc.config import Settings, load_settings, replace
from bidproc.errors import BidprocError
from bidproc.logs import configure as configure_logging


def serve(settings: Settings, *, host: str, port: int, workers: bool) -> None:
    import uvicorn

    from bidproc.api.app import create_app
    from bidproc.api.server import JsonErrorsProtocol
    from bidproc.pipeline.queue import Pipeline
    from bidproc.runtime import Runtime

    configure_logging(settings.service.log_format)
    rt = Runtime(settings)
    rt.migrate()  # before accepting requests
    pipeline = Pipeline(rt)
    if workers:
        pipeline.start()
    try:
        # bidproc's own handler and access lines (bidproc.access, tagged with request and bid ids)
        uvicorn.run(create_app(rt, pipeline), host=host, port=port, log_level="info", log_config=None,
                    access_log=False, http=JsonErrorsProtocol)
    finally:
        if workers:
            pipeline.stop()
        rt.close()


def settings_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--data-dir`` and ``--config``, the same on every command that works on a service's data: a key
    created with ``bidproc apikey create --data-dir D`` is a key of ``bidproc up --data-dir D``."""
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="the service's data directory (default: service.data_dir of the configuration)")
    parser.add_argument("--config", default=None, metavar="TOML",
                        help="configuration file (default: $BIDPROC_CONFIG, else config/bidproc.toml if present)")
    return parser


def settings_for(data_dir: str | None, config: str | None = None) -> Settings:
    """The effective settings, with ``--config`` and ``--data-dir`` (when given) taking precedence."""
    settings = load_settings(config)
    return replace(settings, service={"data_dir": data_dir}) if data_dir else settings


def settings_from(args: argparse.Namespace) -> Settings:
    return settings_for(args.data_dir, args.config)


def ensure_clamd(settings: Settings) -> str:
    """Ping clamd; for a loopback TCP address with nothing listening, start ours with scripts/clamd.sh."""
    from bidproc.intake.scan import ClamdScanner

    try:
        ClamdScanner(settings.clamd).ping()
        return "running"
    except BidprocError:
        # The checkout's script (an editable install or a run from the repository).
        candidates = [Path.cwd() / "scripts" / "clamd.sh", Path(__file__).resolve().parents[1] / "scripts" / "clamd.sh"]
        script = next((c for c in candidates if c.exists()), candidates[0])
        local = not settings.clamd.socket and settings.clamd.host in {"127.0.0.1", "localhost"}
        if not (local and script.exists()):
            raise
        rundir = settings.data_path / "clamd"
        subprocess.run(
            [str(script), "start", str(settings.clamd.port), str(rundir)], check=True, capture_output=True, text=True
        )
        ClamdScanner(settings.clamd).ping()
        return f"started ({rundir})"


@command("bidproc up", subprocess.CalledProcessError)
def up_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc up", description="API and workers on embedded defaults.")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = settings_options(parser).parse_args(argv)
    settings = settings_from(args)
    print(f"clamd: {ensure_clamd(settings)}")
    print(
        f"data: {settings.data_path}  database: {settings.masked()['database']['url'] or 'sqlite'}  "
        f"storage: {settings.storage.backend}  queue: {settings.queue.backend}"
    )
    serve(
        settings,
        host=args.host or settings.api.host,
        port=args.port or settings.api.port,
        workers=settings.queue.backend == "embedded",
    )
    return Exit.OK


@command("bidproc config")
def config_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc config", description="Configuration.")
    parser.add_argument("action", choices=["show"])
    args = settings_options(parser).parse_args(argv)
    print(json.dumps(settings_from(args).masked(), indent=2))
    return Exit.OK


@command("bidproc apikey")
def apikey_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc apikey", description="API keys of platforms (tenants).")
    parser.add_argument("action", choices=["create", "revoke"])
    parser.add_argument("--tenant", help="create: the platform the key is for")
    parser.add_argument("--key", help="revoke: the key to revoke")
    parser.add_argument("--role", default="platform", choices=["platform", "buyer", "archivist"],
                        help="create: platform (deposits), buyer (deadlines, opening, opened documents), archivist")
    args = settings_options(parser).parse_args(argv)
    from bidproc.desk.tenants import create_api_key, revoke_api_key
    from bidproc.runtime import Runtime

    if (args.action == "create" and not args.tenant) or (args.action == "revoke" and not args.key):
        parser.error("create needs --tenant, revoke needs --key")
    rt = Runtime(settings_from(args))
    rt.migrate()  # a key may be made before the service first starts
    if args.action == "create":
        print(create_api_key(rt.db, args.tenant, rt.clock(), args.role))
    else:
        print(f"revoked a key of {revoke_api_key(rt.db, args.key, rt.clock())}")
    return Exit.OK


@command("bidproc journal")
def journal_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc journal", description="The audit journal.")
    parser.add_argument("action", choices=["verify", "anchor"],
                        help="verify: recompute the chain and check every anchor; anchor: timestamp the head now")
    args = settings_options(parser).parse_args(argv)
    from bidproc.journal.anchor import anchor, verify_anchors
    from bidproc.journal.chain import verify
    from bidproc.runtime import Runtime

    rt = Runtime(settings_from(args))
    rt.migrate()
    if args.action == "anchor":
        print(json.dumps({"anchored_seq": anchor(rt.db.session, rt.tsa, rt.clock(), actor="cli")}))
        return Exit.OK
    with rt.db.session() as s:
        check = verify(s)
        anchors = verify_anchors(s, rt.tsa_roots)
    ok = check.ok and anchors.ok
    print(json.dumps({"ok": ok, "entries": check.entries, "head": check.head, "broken_at": check.broken_at,
                      "reason": check.reason, "anchors": anchors.anchors, "anchor_problems": list(anchors.problems)},
                     indent=2))
    return Exit.OK if ok else Exit.FAILED


@command("bidproc migrate")
def migrate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc migrate", description="Create or upgrade the schema.")
    args = settings_options(parser).parse_args(argv)
    from bidproc.runtime import Runtime

    settings = settings_from(args)
    rt = Runtime(settings)
    rt.migrate()
    rt.close()
    print(f"schema up to date ({settings.masked()['database']['url'] or settings.database_url})")
    return Exit.OK

"""`govshare` command line: pki, serve, demo, evidence verify, audit verify."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ._auditlog import verify_hash_chain
from ._config import GatewayConfig
from ._evidence import verify_evidence
from ._pki import DEFAULT_TRUST_DOMAIN, DevPki

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    result: int = args.handler(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govshare", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    pki = commands.add_parser("pki", help="development certificate authority").add_subparsers()
    init = pki.add_parser("init", help="create the development CA and server certificate")
    init.add_argument("--dir", type=Path, default=Path(".govshare/pki"))
    init.add_argument("--trust-domain", default=DEFAULT_TRUST_DOMAIN)
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(handler=_pki_init)
    issue = pki.add_parser("issue", help="issue a client certificate")
    issue.add_argument("--dir", type=Path, default=Path(".govshare/pki"))
    issue.add_argument("--trust-domain", default=DEFAULT_TRUST_DOMAIN)
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--dept", metavar="USCC")
    who.add_argument("--admin", metavar="NAME")
    who.add_argument("--auditor", metavar="NAME")
    issue.set_defaults(handler=_pki_issue)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path)
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", help="simulators + gateway + a scripted scenario")
    demo.add_argument("--once", action="store_true", help="exit after the scenario")
    demo.add_argument("--data-dir", type=Path, default=Path(".govshare/demo"))
    demo.add_argument("--listen", default="127.0.0.1:7443")
    demo.add_argument("--quiet", action="store_true", help="no per-request log lines")
    demo.set_defaults(handler=_demo)

    evidence = commands.add_parser("evidence", help="signed evidence").add_subparsers()
    verify = evidence.add_parser("verify", help="verify evidence offline against a JWKS")
    verify.add_argument("file", type=Path, help="evidence JSON (with a 'jws' member) or a JWS")
    verify.add_argument("--jwks", type=Path, required=True)
    verify.set_defaults(handler=_evidence_verify)

    audit = commands.add_parser("audit", help="the access log").add_subparsers()
    audit_verify = audit.add_parser("verify", help="recompute the log's hash chain offline")
    audit_verify.add_argument("--db", type=Path, default=Path(".govshare/audit.db"))
    audit_verify.set_defaults(handler=_audit_verify)
    return parser


def _pki_init(args: argparse.Namespace) -> int:
    pki = DevPki(args.dir, args.trust_domain)
    if pki.exists() and not args.force:
        print(f"PKI already exists in {args.dir} (use --force to replace it)")
        return 0
    pki.init()
    print(f"development CA and server certificate written to {args.dir}")
    return 0


def _pki_issue(args: argparse.Namespace) -> int:
    pki = DevPki(args.dir, args.trust_domain)
    if not pki.exists():
        print(f"no PKI in {args.dir}: run `govshare pki init` first", file=sys.stderr)
        return 1
    if args.dept:
        from govshare.directory import is_valid_uscc

        if not is_valid_uscc(args.dept):
            print("--dept must be a valid unified social credit code (GB 32100)", file=sys.stderr)
            return 2
        issued = pki.issue("dept", args.dept)
    elif args.admin:
        issued = pki.issue("admin", args.admin)
    else:
        issued = pki.issue("auditor", args.auditor)
    print(f"certificate: {issued.certificate}\nprivate key: {issued.private_key}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ._server import Gateway

    config = GatewayConfig.load(args.config)

    async def run() -> None:
        async with Gateway(config) as gateway:
            print(f"govshare gateway listening on {gateway.address} (mTLS)", flush=True)
            await gateway.serve_until_signalled()

    asyncio.run(run())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return asyncio.run(run_demo(args.data_dir, listen=args.listen, once=args.once))


def _evidence_verify(args: argparse.Namespace) -> int:
    text = args.file.read_text("utf-8").strip()
    token = text
    if text.startswith("{"):
        token = str(json.loads(text)["jws"])
    result = verify_evidence(token, json.loads(args.jwks.read_text("utf-8")))
    if result.valid:
        print(
            f"valid: key {result.key_id}, request {result.request_id}, log index {result.log_index}"
        )
        return 0
    print(f"INVALID: {result.reason}")
    return 1


def _audit_verify(args: argparse.Namespace) -> int:
    if not args.db.exists():
        print(f"no audit log at {args.db}", file=sys.stderr)
        return 2
    result = verify_hash_chain(args.db)
    if result.ok:
        print(f"ok: {result.size} entries, hash chain intact")
        return 0
    print(f"FAILED at index {result.first_bad_index}: {result.problem}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`govshare` command line: pki, serve, demo, directory, evidence verify, and audit
verify / prove / export."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from govshare.api.exchange.v1 import exchange_pb2

from ._auditverify import (
    read_export,
    stored_checkpoints,
    stored_verifier_key,
    verify_entries,
    verify_log_file,
)
from ._checkpoint import CheckpointError, NoteVerifier, open_signed_note
from ._cli_directory import add_directory_commands
from ._config import GatewayConfig
from ._evidence import EvidenceVerification, verify_evidence
from ._logsetup import configure_logging
from ._loop import run_with_event_loop
from ._merkle import leaf_hash, verify_inclusion
from ._merkle_store import SqliteNodeStore
from ._pki import DEFAULT_TRUST_DOMAIN, DevPki

__all__ = ["main"]

_T = TypeVar("_T")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    configure_logging(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    result: int = args.handler(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govshare", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    pki = commands.add_parser("pki", help="development certificate authority").add_subparsers()
    init = pki.add_parser("init", help="create the development CA and server certificate")
    init.add_argument("--dir", type=Path, default=Path(".govshare/pki"))
    init.add_argument(
        "--trust-domain",
        default=DEFAULT_TRUST_DOMAIN,
        help="SPIFFE trust domain, remembered in the folder for `pki issue`",
    )
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(handler=_pki_init)
    issue = pki.add_parser("issue", help="issue a client certificate")
    issue.add_argument("--dir", type=Path, default=Path(".govshare/pki"))
    issue.add_argument("--trust-domain", help="default: the one `pki init` recorded")
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
    verify.add_argument(
        "file",
        type=Path,
        help="an Evidence message in protobuf JSON (a 'jws' member, and any other member "
        "present must agree with it) or a compact JWS",
    )
    verify.add_argument("--jwks", type=Path, required=True)
    verify.set_defaults(handler=_evidence_verify)

    add_directory_commands(commands)

    audit = commands.add_parser("audit", help="the transparency log").add_subparsers()
    audit_verify = audit.add_parser(
        "verify", help="recompute the log offline against its signed checkpoints"
    )
    source = audit_verify.add_mutually_exclusive_group()
    source.add_argument("--db", type=Path, help="the gateway's audit.db (default)")
    source.add_argument("--export", type=Path, help="entries.jsonl from `audit export`")
    source.add_argument("--proof", type=Path, help="an inclusion proof from `audit prove`")
    audit_verify.add_argument(
        "--checkpoints", type=Path, help="JSON list of signed notes (from `audit export`)"
    )
    audit_verify.add_argument("--key", help="the log's note verifier key, pinned out of band")
    audit_verify.set_defaults(handler=_audit_verify)
    prove = audit.add_parser("prove", help="print an inclusion proof for one entry")
    prove.add_argument("index", type=int)
    prove.add_argument("--db", type=Path, default=Path(".govshare/audit.db"))
    prove.set_defaults(handler=_audit_prove)
    export = audit.add_parser("export", help="write entries and checkpoints for offline checks")
    export.add_argument("--db", type=Path, default=Path(".govshare/audit.db"))
    export.add_argument("--out", type=Path, required=True, help="folder to write into")
    export.set_defaults(handler=_audit_export)
    return parser


def _error(message: str) -> int:
    """One line on stderr and exit status 2: the operator's input, not a crash."""
    # One line even for multi-line library messages (YAML marks the spot over four).
    print(f"govshare: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _pki_init(args: argparse.Namespace) -> int:
    try:
        pki = DevPki(args.dir, args.trust_domain)
        if pki.has_ca() and not args.force:
            if pki.exists():
                print(f"PKI already exists in {args.dir} (use --force to replace it)")
                return 0
            # Only the server certificate is gone: a new CA would orphan every
            # client certificate already issued, so reissue just that one.
            pki.issue_server()
            print(f"server certificate reissued from the existing CA in {args.dir}")
            return 0
        pki.init()
    except (ValueError, OSError) as error:
        return _error(str(error))
    print(f"development CA and server certificate written to {args.dir}")
    return 0


def _pki_issue(args: argparse.Namespace) -> int:
    try:
        pki = DevPki(args.dir, args.trust_domain)
        if not pki.exists():
            print(f"no PKI in {args.dir}: run `govshare pki init` first", file=sys.stderr)
            return 1
        # `is not None`: an empty name is a mistake to report, not "no option given".
        if args.dept is not None:
            from govshare.directory import is_valid_uscc

            if not is_valid_uscc(args.dept):
                return _error("--dept must be a valid unified social credit code (GB 32100)")
            issued = pki.issue("dept", args.dept)
        elif args.admin is not None:
            issued = pki.issue("admin", args.admin)
        else:
            issued = pki.issue("auditor", args.auditor)
    except (ValueError, OSError) as error:
        return _error(str(error))
    print(f"certificate: {issued.certificate}\nprivate key: {issued.private_key}")
    return 0


class _CannotStart(Exception):
    """The gateway failed before serving: reported in one line, not as a traceback."""


class _StopFailed(Exception):
    """Stopping went wrong after the gateway had served: not a failure to start."""


def _serve(args: argparse.Namespace) -> int:
    from ._server import Gateway

    try:
        config = GatewayConfig.load(args.config)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as error:
        return _error(f"configuration: {error}")

    async def run() -> None:
        try:
            gateway = Gateway(config)
            await gateway.start()
        except Exception as error:
            # Bad settings, a taken port, an unreadable or damaged file: all the
            # operator's to fix, and start() has already closed what it opened.
            raise _CannotStart(f"{type(error).__name__}: {error}") from error
        try:
            print(f"govshare gateway listening on {gateway.address} (mTLS)", flush=True)
            try:
                # Once signalled it stops the gateway itself, so what it raises
                # comes from stopping, not from starting.
                await gateway.serve_until_signalled()
            except Exception as error:
                raise _StopFailed(f"{type(error).__name__}: {error}") from error
        finally:
            try:
                await gateway.stop()
            except Exception as error:
                raise _StopFailed(f"{type(error).__name__}: {error}") from error

    try:
        run_with_event_loop(run(), config.event_loop)
    except _CannotStart as error:
        return _error(f"cannot start the gateway: {error}")
    except _StopFailed as error:
        # Exit 1, not 2: the gateway started and served, so it was not a bad setting
        # that _error's exit 2 stands for; one line all the same.
        message = " ".join(f"error while stopping the gateway: {error}".split())
        print(f"govshare: {message}", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    try:
        return run_with_event_loop(run_demo(args.data_dir, listen=args.listen, once=args.once))
    except (OSError, RuntimeError, ValueError) as error:
        # Typically the listen address is taken (another demo still running), or it
        # is no host:port (the configuration refuses it).
        return _error(f"cannot run the demo on {args.listen}: {error}")


def _evidence_verify(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text("utf-8").strip()
        token, stored = text, None
        if text.startswith("{"):
            stored = _stored_evidence(json.loads(text))
            token = stored[0].jws
        jwks = json.loads(args.jwks.read_text("utf-8"))
    except (OSError, ValueError, KeyError, TypeError, RecursionError, json_format.Error) as error:
        print(f"INVALID: cannot read the evidence or the key set: {type(error).__name__}: {error}")
        return 2
    result = verify_evidence(token, jwks)
    if not result.valid:
        print(f"INVALID: {result.reason}")
        return 1
    # An integrator reads the stored message, not the JWS: a member that says
    # something the signature does not is as false as a broken signature.
    mismatched = _mismatched_members(*stored, result) if stored is not None else []
    if mismatched:
        print(f"INVALID: MISMATCH ({', '.join(mismatched)})")
        return 1
    print(f"valid: key {result.key_id}, request {result.request_id}, log index {result.log_index}")
    return 0


# Evidence fields by either protobuf JSON name (`recordJson` or `record_json`).
_EVIDENCE_FIELDS: dict[str, FieldDescriptor] = {
    name: field
    for field in exchange_pb2.Evidence.DESCRIPTOR.fields
    for name in (field.name, field.json_name)
}


def _stored_evidence(document: object) -> tuple[exchange_pb2.Evidence, list[str]]:
    """An Evidence message in protobuf JSON, and the members the file holds besides
    `jws` (spelt as there, in field-number order)."""
    if not isinstance(document, dict):
        raise ValueError("evidence JSON must be an object")
    # Refused rather than skipped: a member no signature covers could be taken on trust.
    unknown = [name for name in document if name not in _EVIDENCE_FIELDS]
    if unknown:
        raise ValueError(f"not a member of Evidence: {', '.join(map(repr, unknown))}")
    if "jws" not in document:
        raise KeyError("jws")
    message = json_format.ParseDict(document, exchange_pb2.Evidence())
    present = [name for name in document if name != "jws"]
    return message, sorted(present, key=lambda name: _EVIDENCE_FIELDS[name].number)


def _mismatched_members(
    message: exchange_pb2.Evidence, present: list[str], result: EvidenceVerification
) -> list[str]:
    """The members present that disagree with the verified JWS. A member left out
    is no claim and is not checked (protobuf JSON omits defaults: a `logIndex` of 0)."""
    record = result.payload if isinstance(result.payload, dict) else {}
    agrees = {
        # The payload as signed, byte for byte: that is what the gateway puts there,
        # and "the same JSON value" would have to settle duplicate keys and numbers.
        "record_json": message.record_json.encode("utf-8", "surrogatepass") == result.payload_bytes,
        "fields": dict(message.fields) == record.get("fields", {}),
        "request_id": message.request_id == result.request_id,
        "log_index": message.log_index == result.log_index,
        "key_id": message.key_id == result.key_id,
        # `iat` holds whole seconds: the fraction issueTime may add is not signed.
        "issue_time": message.issue_time.seconds == result.issued_at,
    }
    return [name for name in present if not agrees[_EVIDENCE_FIELDS[name].name]]


def _audit_verify(args: argparse.Namespace) -> int:
    try:
        return _audit_verify_checked(args)
    except (ValueError, CheckpointError, OSError) as error:
        # A mistyped key, a missing or mangled file is the auditor's input, not a crash.
        print(f"INVALID: {error}")
        return 2
    except RecursionError:
        print("INVALID: an input file is nested too deeply to be what govshare writes")
        return 2


def _audit_verify_checked(args: argparse.Namespace) -> int:
    if args.proof is not None:
        return _verify_proof_file(args.proof, args.key)
    extra = _read_checkpoints(args.checkpoints) if args.checkpoints else []
    if args.export is not None:
        if not args.key or not extra:
            print("--export needs --key and --checkpoints", file=sys.stderr)
            return 2
        with args.export.open(encoding="utf-8") as lines:
            result = verify_entries(read_export(lines), extra, NoteVerifier.from_key(args.key))
    else:
        db = args.db or Path(".govshare/audit.db")
        if not db.exists():
            print(f"no audit log at {db}", file=sys.stderr)
            return 2
        result = verify_log_file(db, args.key, extra)
        if result.unreadable:
            print(f"INVALID: {result.problem}")
            return 2
    for note in result.notes:
        print(f"note: {note}")
    if result.ok:
        print(
            f"ok: {result.size} entries, {result.checkpoints_checked} signed checkpoints verified"
        )
        return 0
    if result.first_bad_index is None:  # e.g. a checkpoint's signature: no entry to name
        print(f"FAILED: {result.problem}")
    else:
        print(f"FAILED at index {result.first_bad_index}: {result.problem}")
    return 1


def _read_checkpoints(path: Path) -> list[str]:
    notes = json.loads(path.read_text("utf-8"))
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ValueError(f"{path} must hold a JSON list of signed notes (strings)")
    return notes


def _audit_prove(args: argparse.Namespace) -> int:
    try:
        return _audit_prove_checked(args)
    except (ValueError, CheckpointError, LookupError) as error:
        print(f"cannot prove: {error}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as error:
        print(f"cannot prove: cannot read {args.db}: {error}", file=sys.stderr)
        return 2


def _audit_prove_checked(args: argparse.Namespace) -> int:
    if not args.db.exists():
        print(f"no audit log at {args.db}", file=sys.stderr)
        return 2
    conn = sqlite3.connect(args.db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        notes = stored_checkpoints(conn)
        key = stored_verifier_key(conn)
        if key is None or not notes:
            print("the log has no signed checkpoint yet", file=sys.stderr)
            return 1
        verifier = NoteVerifier.from_key(key)
        latest = open_signed_note(notes[-1], [verifier])
        if not 0 <= args.index < latest.size:
            print(
                f"index must be below the latest checkpoint's size {latest.size}", file=sys.stderr
            )
            return 2
        row = conn.execute("SELECT leaf FROM access_log WHERE idx = ?", (args.index,)).fetchone()
        if row is None or not isinstance(row[0], bytes):
            raise ValueError(
                f"entry {args.index} is missing or not stored as bytes: the log was altered; "
                "run `govshare audit verify`"
            )
        proof = SqliteNodeStore(conn, create_table=False).inclusion_proof(args.index, latest.size)
    finally:
        conn.close()
    # Handing out a proof that fails would accuse the log of a fork it did not make.
    if not verify_inclusion(leaf_hash(row[0]), args.index, latest.size, proof, latest.root_hash):
        raise ValueError(
            f"the stored tree does not prove entry {args.index} under the signed checkpoint: "
            "the log was altered; run `govshare audit verify`"
        )
    print(
        json.dumps(
            {
                "index": args.index,
                "tree_size": latest.size,
                "leaf": base64.b64encode(row[0]).decode(),
                "proof": [h.hex() for h in proof],
                "checkpoint": notes[-1],
                "verifier_key": key,
            },
            indent=2,
        )
    )
    return 0


def _proof_member(document: object, name: str, kind: type[_T]) -> _T:
    """A member of a proof file, or ValueError naming what is wrong with it."""
    if not isinstance(document, dict):
        raise ValueError("the proof file must hold a JSON object from `govshare audit prove`")
    value = document.get(name)
    # bool is an int to Python, never to a proof.
    if not isinstance(value, kind) or isinstance(value, bool):
        wanted = {str: "string", int: "integer", list: "list"}.get(kind, kind.__name__)
        raise ValueError(f"the proof file has no {wanted} member {name!r}")
    return value


def _verify_proof_file(path: Path, key: str | None) -> int:
    document = json.loads(path.read_text("utf-8"))
    if key is None:
        key = _proof_member(document, "verifier_key", str)
        print("note: the key was read from the proof file itself; pass --key to pin it")
    note = _proof_member(document, "checkpoint", str)
    leaf = base64.b64decode(_proof_member(document, "leaf", str), validate=True)
    hashes = _proof_member(document, "proof", list)
    if not all(isinstance(h, str) for h in hashes):
        raise ValueError("the proof file's 'proof' must be a list of hex strings")
    proof = [bytes.fromhex(h) for h in hashes]
    index = _proof_member(document, "index", int)
    size = _proof_member(document, "tree_size", int)
    try:
        checkpoint = open_signed_note(note, [NoteVerifier.from_key(key)])
    except CheckpointError as error:
        print(f"INVALID: checkpoint: {error}")
        return 1
    if size != checkpoint.size or not verify_inclusion(
        leaf_hash(leaf), index, size, proof, checkpoint.root_hash
    ):
        print(f"INVALID: entry {index} is not proven in the tree of size {checkpoint.size}")
        return 1
    print(f"valid: entry {index} is in the signed tree of size {size} ({checkpoint.origin})")
    return 0


def _audit_export(args: argparse.Namespace) -> int:
    if not args.db.exists():
        print(f"no audit log at {args.db}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        count, notes, key = _export_snapshot(args.db, args.out / "entries.jsonl")
        (args.out / "checkpoints.json").write_text(json.dumps(notes, indent=2))
    except sqlite3.DatabaseError as error:
        print(f"cannot export: cannot read {args.db}: {error}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        print(f"cannot export: {error}", file=sys.stderr)
        return 1
    print(f"{count} entries and {len(notes)} checkpoints written to {args.out}")
    if key:
        print(f"log key (compare with the one published by the operator): {key}")
    return 0


def _export_snapshot(db: Path, entries: Path) -> tuple[int, list[str], str | None]:
    """Write the entries; return their count, the checkpoints and the key, all from one
    snapshot, so a checkpoint a live gateway publishes meanwhile is not in the export
    without the entries it covers."""
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        conn.execute("BEGIN")
        notes = stored_checkpoints(conn)
        key = stored_verifier_key(conn)
        count = 0
        with entries.open("w", encoding="utf-8") as out:
            for index, leaf in conn.execute("SELECT idx, leaf FROM access_log ORDER BY idx"):
                if not isinstance(leaf, bytes):
                    raise ValueError(
                        f"entry {index} is not stored as bytes: the log was altered; "
                        "run `govshare audit verify`"
                    )
                entry = {"index": index, "leaf": base64.b64encode(leaf).decode()}
                out.write(json.dumps(entry) + "\n")
                count += 1
        conn.execute("COMMIT")
    finally:
        conn.close()
    return count, notes, key


if __name__ == "__main__":
    raise SystemExit(main())

"""`govshare directory export|import`: the catalogue as administrators keep it.

Both work on the directory store named by the configuration (the same file or
database the gateway uses); a running gateway notices the change within its
poll interval. Import is all or nothing: every bad row is reported with its
line, and then nothing is written.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from govshare.directory import (
    ImportRejected,
    ImportReport,
    SqlCatalogueStore,
    export_catalogue_yaml,
    import_catalogue_yaml,
    import_resources_csv,
)

from ._config import GatewayConfig
from ._server import seed_catalogue_store

__all__ = ["add_directory_commands"]


def add_directory_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    directory = commands.add_parser("directory", help="the catalogue").add_subparsers()
    export = directory.add_parser("export", help="write the catalogue as YAML to stdout")
    export.add_argument("--config", type=Path, help="gateway configuration (for the store)")
    export.set_defaults(handler=_export)
    load = directory.add_parser(
        "import", help="import a catalogue YAML or a CSV list of resources (all or nothing)"
    )
    load.add_argument("file", type=Path, help="catalogue.yaml, or resources.csv")
    load.add_argument("--config", type=Path, help="gateway configuration (for the store)")
    load.add_argument("--actor", default="", help="who is importing (default: admin/<login>)")
    load.set_defaults(handler=_import)


async def _open_store(config: GatewayConfig) -> SqlCatalogueStore:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = config.open_catalogue_store()
    try:
        await seed_catalogue_store(store, config)
    except BaseException:
        await store.close()
        raise
    return store


class _Refused(Exception):
    """An input the command cannot use: one line on stderr, exit status 2."""


def _refusing(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _Refused as refused:
            print(f"govshare directory: {refused}", file=sys.stderr)
            return 2

    return run


def _config(path: Path | None) -> GatewayConfig:
    if path is not None and not path.is_file():
        raise _Refused(f"no configuration file {path}")
    try:
        return GatewayConfig.load(path)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as error:
        # TypeError: a key of the right name with a value of the wrong shape.
        reason = str(error).replace("\n", " ")
        raise _Refused(f"cannot use the configuration {path}: {reason}") from None


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise _Refused(f"no such file: {path}")
    try:
        return path.read_text("utf-8-sig")
    except UnicodeDecodeError:
        # Excel in China saves CSV as GBK unless told otherwise.
        raise _Refused(
            f"{path} is not UTF-8 text: save it as UTF-8 (in Excel: CSV UTF-8)"
        ) from None
    except OSError as error:
        raise _Refused(f"cannot read {path}: {error.strerror or error}") from None


@_refusing
def _export(args: argparse.Namespace) -> int:
    config = _config(args.config)

    async def run() -> str:
        store = await _open_store(config)
        try:
            return await export_catalogue_yaml(store)
        finally:
            await store.close()

    sys.stdout.write(asyncio.run(run()))
    return 0


@_refusing
def _import(args: argparse.Namespace) -> int:
    path: Path = args.file
    text = _read_text(path)
    config = _config(args.config)
    actor = args.actor or f"admin/{getpass.getuser()}"

    async def run() -> ImportReport:
        store = await _open_store(config)
        try:
            if path.suffix.lower() == ".csv":
                return await import_resources_csv(text, store, actor, source=str(path))
            return await import_catalogue_yaml(text, store, actor, source=str(path))
        finally:
            await store.close()

    try:
        report = asyncio.run(run())
    except ImportRejected as rejected:
        for problem in rejected.problems:
            print(problem, file=sys.stderr)
        print(f"nothing imported: {len(rejected.problems)} problem(s)", file=sys.stderr)
        return 1
    for kind in sorted({*report.created, *report.updated, *report.unchanged}):
        print(
            f"{kind}: {report.created.get(kind, 0)} created, {report.updated.get(kind, 0)} "
            f"updated, {report.unchanged.get(kind, 0)} unchanged"
        )
    if not report.changed:
        print("nothing changed")
    return 0

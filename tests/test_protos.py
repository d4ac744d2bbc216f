"""Generated protobuf code is what `make protos` would produce now."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _load_generator() -> object:
    spec = importlib.util.spec_from_file_location(
        "protos_generate", _ROOT / "protos" / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["protos_generate"] = module
    spec.loader.exec_module(module)
    return module


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


class TestGeneratedCode:
    def test_committed_code_matches_a_fresh_generation(self, tmp_path: Path) -> None:
        """Regenerating from protos/ into a temp dir gives byte-identical files."""
        generator = _load_generator()
        generator.generate(tmp_path)  # type: ignore[attr-defined]
        fresh = _tree(tmp_path)
        committed = _tree(_ROOT / "protos" / "python")
        stale = sorted(
            name
            for name in fresh.keys() | committed.keys()
            if fresh.get(name) != committed.get(name)
        )
        assert not stale, f"run `make protos`: stale or missing generated files {stale}"

    def test_generated_services_import_under_the_govshare_namespace(self) -> None:
        """The stubs import as govshare.api.<area>.v1 after a plain editable install."""
        from govshare.api.directory.v1 import directory_pb2_grpc
        from govshare.api.exchange.v1 import exchange_pb2

        assert exchange_pb2.DESCRIPTOR.package == "govshare.exchange.v1"
        assert hasattr(directory_pb2_grpc, "DirectoryServiceStub")

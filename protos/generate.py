"""Regenerate Python code from protos/ into protos/python (package govshare.api).

protoc names Python modules after the proto path (govshare.directory.v1), which
would collide with our `govshare.directory` room; so code is generated into a
temporary folder and its imports are rewritten to `govshare.api.<area>.v1`.
Run as `python protos/generate.py [OUT_DIR]` (default: protos/python).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

_PROTO_ROOT = Path(__file__).resolve().parent
_BIN = Path(sys.executable).parent
_DEFAULT_OUT = _PROTO_ROOT / "python"
_IMPORT = re.compile(r"^(from|import) govshare\.(\w+)\.v1\b", re.MULTILINE)


def generate(out_dir: Path) -> None:
    sources = sorted(
        str(p.relative_to(_PROTO_ROOT)) for p in _PROTO_ROOT.glob("govshare/**/*.proto")
    )
    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"--plugin=protoc-gen-mypy={_BIN / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={_BIN / 'protoc-gen-mypy_grpc'}",
            f"-I{_PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        generated = Path(tmp) / "govshare"
        for area_dir in sorted(p for p in generated.iterdir() if p.is_dir()):
            target = out_dir / area_dir.name / "v1"
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            (target.parent / "__init__.py").touch()
            (target / "__init__.py").touch()
            for source in sorted((area_dir / "v1").iterdir()):
                text = _IMPORT.sub(r"\1 govshare.api.\2.v1", source.read_text())
                (target / source.name).write_text(text)
    (out_dir / "__init__.py").write_text(
        '"""Generated protobuf code; regenerate with `make protos`."""\n'
    )
    (out_dir / "py.typed").touch()


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else _DEFAULT_OUT)

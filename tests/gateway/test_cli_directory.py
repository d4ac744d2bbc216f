"""`govshare directory export|import` on the store named by the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from govshare.gateway import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data")}))
    return path


class TestDirectoryCommands:
    def test_export_then_import_changes_nothing(
        self, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The exported catalogue imports back idempotently."""
        assert main(["directory", "export", "--config", str(config)]) == 0
        exported = capsys.readouterr().out
        assert "105001/00001" in exported
        path = tmp_path / "catalogue.yaml"
        path.write_text(exported)
        assert main(["directory", "import", str(path), "--config", str(config)]) == 0
        assert "nothing changed" in capsys.readouterr().out

    def test_a_file_with_bad_rows_imports_nothing_and_names_each_line(
        self, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Two bad rows are reported with their lines; the good row is not imported either."""
        path = tmp_path / "resources.csv"
        path.write_text(
            "资源代码,资源名称,提供方代码,共享类型,共享条件,不予共享依据,发布日期,信息项\n"
            "105009/00001,好资源,11330100002482101D,无条件共享,,,2026-11-01,a:名称:string\n"
            "105009/00002,坏资源一,11330100002482101X,无条件共享,,,2026-11-01,a:名称:string\n"
            "105009/00003,坏资源二,11330100002482101D,有条件共享,,,2026-11-01,a:名称:string\n",
            encoding="utf-8",
        )
        assert main(["directory", "import", str(path), "--config", str(config)]) == 1
        errors = capsys.readouterr().err
        assert f"{path}:3:" in errors
        assert f"{path}:4:" in errors
        assert "nothing imported" in errors
        assert main(["directory", "export", "--config", str(config)]) == 0
        assert "105009/00001" not in capsys.readouterr().out

"""`govshare directory export|import` on the store named by the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from govshare.directory import dump_catalogue_yaml, load_builtin_catalogue
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

    def test_a_new_store_is_seeded_from_catalogue_seed_as_the_gateway_would(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """On a new data_dir, the first directory command seeds the configured
        `catalogue_seed`, not the built-in catalogue (which the gateway would then
        find in place and never replace)."""
        document = yaml.safe_load(dump_catalogue_yaml(load_builtin_catalogue()))
        document["departments"].append(
            {"uscc": "12330100MB0000000K", "display_name": "市测试局", "region_code": "330100"}
        )
        seed = tmp_path / "seed.yaml"
        seed.write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
        config = tmp_path / "seeded.yaml"
        config.write_text(
            yaml.safe_dump({"data_dir": str(tmp_path / "seeded"), "catalogue_seed": str(seed)})
        )
        assert main(["directory", "export", "--config", str(config)]) == 0
        assert "市测试局" in capsys.readouterr().out


class TestDirectoryCommandInputErrors:
    """Bad input is one line on stderr and a non-zero exit, never a traceback."""

    def test_an_unquoted_impossible_date_is_reported_by_line(
        self, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`publish_date: 2025-02-30` names its file and line; nothing is imported."""
        path = tmp_path / "catalogue.yaml"
        path.write_text(
            "resources:\n"
            "  - code: 105009/00001\n"
            "    display_name: 坏日期\n"
            "    provider: 11330100002482101D\n"
            "    sharing_type: UNCONDITIONAL\n"
            "    publish_date: 2025-02-30\n"
            "    data_items: [{name: a, label: 甲, data_type: string}]\n",
            encoding="utf-8",
        )
        assert main(["directory", "import", str(path), "--config", str(config)]) == 1
        errors = capsys.readouterr().err
        assert f"{path}:2:" in errors
        assert "'2025-02-30' is not a real YYYY-MM-DD date" in errors
        assert "Traceback" not in errors

    def test_a_gbk_csv_is_refused_as_not_utf8(
        self, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A spreadsheet saved as GBK is refused with a hint to save it as UTF-8."""
        path = tmp_path / "resources.csv"
        path.write_bytes("资源代码,资源名称\n105009/00001,好资源\n".encode("gbk"))
        assert main(["directory", "import", str(path), "--config", str(config)]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line == (
            f"govshare directory: {path} is not UTF-8 text: save it as UTF-8 (in Excel: CSV UTF-8)"
        )

    @pytest.mark.parametrize("command", [["export"], ["import", "catalogue.yaml"]])
    def test_a_missing_configuration_file_is_one_line(
        self,
        command: list[str],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`--config missing.yaml` says so in one line, for export and import alike."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "catalogue.yaml").write_text("departments: []\n", encoding="utf-8")
        assert main(["directory", *command, "--config", "missing.yaml"]) == 2
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [
            "govshare directory: no configuration file missing.yaml"
        ]
        assert captured.out == ""

    def test_a_broken_configuration_file_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A configuration that is not valid YAML is refused in one line."""
        path = tmp_path / "gateway.yaml"
        path.write_text("data_dir: [unclosed\n", encoding="utf-8")
        assert main(["directory", "export", "--config", str(path)]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(f"govshare directory: cannot use the configuration {path}:")

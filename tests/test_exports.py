"""Package surfaces: __all__ sorted isort-style, complete, and resolvable."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest

PACKAGES = ["govshare.gateway", "govshare.directory", "govshare.adapters"]


def ruff_sort_key(name: str) -> tuple[int, list[tuple[int, int | str]]]:
    """RUF022 "isort-style": CONSTANTS, then Classes, then the rest; natural order within."""
    if len(name) > 1 and name.isupper():
        category = 0
    elif name[:1].isupper():
        category = 1
    else:
        category = 2
    parts = [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p]
    return category, parts


def private_modules(package: ModuleType) -> list[ModuleType]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.startswith("_") and not info.ispkg and info.name != "__main__"
    ]


@pytest.fixture(params=PACKAGES)
def package(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


class TestSortKey:
    def test_orders_like_ruff(self) -> None:
        """The key puts CONSTANTS, Classes, functions in that order, naturally within each."""
        names = ["load", "Grant", "ERROR_DOMAIN", "A", "x2", "x10", "Catalogue", "DEFAULT_X", "_x"]
        assert sorted(names, key=ruff_sort_key) == [
            "DEFAULT_X",
            "ERROR_DOMAIN",
            "A",
            "Catalogue",
            "Grant",
            "_x",
            "load",
            "x2",
            "x10",
        ]


class TestExports:
    def test_all_is_sorted(self, package: ModuleType) -> None:
        """The package's __all__ follows ruff's isort-style order (RUF022)."""
        names = list(package.__all__)
        assert names == sorted(names, key=ruff_sort_key)
        assert len(set(names)) == len(names)

    def test_every_name_exists(self, package: ModuleType) -> None:
        """Every name in __all__ is an attribute of the package."""
        assert [name for name in package.__all__ if not hasattr(package, name)] == []

    def test_private_modules_are_re_exported(self, package: ModuleType) -> None:
        """Every name a private module lists in its __all__ is in the package's __all__."""
        missing = []
        for module in private_modules(package):
            for name in getattr(module, "__all__", ()):
                if name not in package.__all__ or getattr(package, name) is not getattr(
                    module, name
                ):
                    missing.append(f"{module.__name__}.{name}")
        assert not missing, "not re-exported: " + ", ".join(missing)

    def test_private_module_all_is_sorted(self, package: ModuleType) -> None:
        """Each private module's own __all__ follows the same order."""
        unsorted = [
            module.__name__
            for module in private_modules(package)
            if list(getattr(module, "__all__", ()))
            != sorted(getattr(module, "__all__", ()), key=ruff_sort_key)
        ]
        assert unsorted == []

"""Registry: registration, lookup with close-match errors, pattern listing and entry-point plugins."""

from __future__ import annotations

import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from torch import nn

from jepa.registry import Registry, UnknownNameError


def build_linear(width: int = 4) -> nn.Module:
    """A linear layer (test builder)."""
    return nn.Linear(width, width)


def test_register_build_and_list() -> None:
    registry: Registry = Registry("widget", "jepa.test_widgets")
    registry.register("lin_small", weights="org/repo")(build_linear)
    registry.add("lin_big", lambda: build_linear(8), description="bigger")
    assert registry.names() == ["lin_big", "lin_small"]
    assert registry.names("lin_s*") == ["lin_small"]
    assert registry.get("lin_small").weights == "org/repo"
    assert registry.get("lin_small").description == "A linear layer (test builder)."
    module = registry.build("lin_small", width=3)
    assert module.weight.shape == (3, 3)
    assert "lin_big" in registry and "nope" not in registry


def test_duplicate_name_is_an_error_unless_override() -> None:
    registry: Registry = Registry("widget", "jepa.test_widgets")
    registry.add("a", build_linear)
    with pytest.raises(ValueError, match="'a' is already registered"):
        registry.add("a", build_linear)
    registry.add("a", lambda: build_linear(2), override=True)
    assert registry.build("a").weight.shape == (2, 2)


def test_unknown_name_suggests_close_matches() -> None:
    registry: Registry = Registry("widget", "jepa.test_widgets")
    registry.add("vit_large", build_linear)
    registry.add("vit_huge", build_linear)
    with pytest.raises(UnknownNameError, match=r"unknown widget 'vit_lage'.*Did you mean: vit_large"):
        registry.get("vit_lage")
    with pytest.raises(KeyError):  # still a KeyError for callers that catch that
        registry.get("zzz")


def test_entry_point_plugin_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party distribution declaring an entry point in the group adds a builder without touching jepa."""
    package = tmp_path / "my_plugin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def build_plugin_encoder(width: int = 5):
                \"\"\"Plugin encoder.\"\"\"
                return nn.Linear(width, width)
            """
        )
    )
    dist_info = tmp_path / "my_plugin_pkg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin-pkg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[jepa.test_plugins]\nplugin_vit = my_plugin_pkg:build_plugin_encoder\nbroken = my_plugin_pkg:missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert any(ep.name == "plugin_vit" for ep in metadata.entry_points(group="jepa.test_plugins"))

    registry: Registry = Registry("encoder", "jepa.test_plugins")
    with pytest.warns(UserWarning, match="could not load encoder plugin 'broken'"):
        names = registry.names()
    assert "plugin_vit" in names
    entry = registry.get("plugin_vit")
    assert entry.source.startswith("entry point my_plugin_pkg")
    assert registry.build("plugin_vit", width=2).weight.shape == (2, 2)
    sys.modules.pop("my_plugin_pkg", None)

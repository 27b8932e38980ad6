"""Scenario edits (pure, plus a temporary copy of a context): no engine needed."""

from __future__ import annotations

import json

import pytest

from harness.bench import scenarios
from harness.errors import HarnessError


def test_parse_orders_and_expands_all():
    assert scenarios.parse(None) == list(scenarios.ALL)
    assert scenarios.parse(["source-change,cold"]) == ["cold", "source-change"]
    assert scenarios.parse(["no-change", "no-change"]) == ["no-change"]
    with pytest.raises(HarnessError, match="unknown scenario 'warm'"):
        scenarios.parse(["warm"])


def test_warmups_default_to_one_except_cold():
    assert scenarios.warmups("cold", None) == 0
    assert scenarios.warmups("source-change", None) == 1
    assert scenarios.warmups("cold", 2) == 2


def test_pick_source_file_prefers_the_entry_point():
    files = ["package.json", "src/routes/items.ts", "src/index.ts", "test/app.test.ts"]
    assert scenarios.pick_source_file(files) == "src/index.ts"
    assert scenarios.pick_source_file(["lib/a.js", "src/b.ts"]) == "src/b.ts"
    assert scenarios.pick_source_file(["node_modules/x/index.js", "README.md"]) is None


def test_bump_version_changes_package_and_lock_together():
    pkg = json.dumps({"name": "app", "version": "1.2.3-rc.1", "dependencies": {"a": "^1"}})
    lock = json.dumps({"name": "app", "version": "1.2.3-rc.1", "lockfileVersion": 3,
                       "packages": {"": {"name": "app", "version": "1.2.3-rc.1"},
                                    "node_modules/a": {"version": "1.0.0"}}})
    new_pkg, new_lock, version = scenarios.bump_version(pkg, lock, "harness.X.1")
    assert version == "1.2.3-harness.X.1"
    assert json.loads(new_pkg)["version"] == version
    assert json.loads(new_pkg)["dependencies"] == {"a": "^1"}
    locked = json.loads(new_lock)
    assert locked["version"] == version and locked["packages"][""]["version"] == version
    assert locked["packages"]["node_modules/a"]["version"] == "1.0.0"  # dependencies untouched
    assert scenarios.bump_version(pkg, None, "t")[1] is None


def test_workspace_copies_what_the_context_sends_and_never_edits_the_original(tmp_path):
    ctx = tmp_path / "app"
    (ctx / "src").mkdir(parents=True)
    (ctx / "node_modules" / "x").mkdir(parents=True)
    (ctx / "src" / "index.ts").write_text("export const a = 1;\n")
    (ctx / "node_modules" / "x" / "index.js").write_text("x")
    (ctx / ".dockerignore").write_text("node_modules\n")
    (ctx / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0"}))
    (ctx / "package-lock.json").write_text(json.dumps({"name": "app", "version": "1.0.0",
                                                       "packages": {"": {"version": "1.0.0"}}}))
    before = {p: p.read_bytes() for p in ctx.rglob("*") if p.is_file()}
    with scenarios.Workspace(ctx, "20261126T000000Z") as ws:
        assert not (ws.root / "node_modules").exists()
        first = ws.change("source-change")
        text1 = (ws.root / "src" / "index.ts").read_text()
        ws.change("source-change")
        text2 = (ws.root / "src" / "index.ts").read_text()
        dep = ws.change("dependency-change")
        assert "src/index.ts" in first.description
        assert text1 != text2 and text1.startswith("export const a = 1;")
        assert "20261126T000000Z" in text1  # unique across runs, not only within one
        assert "package-lock.json" in dep.description
        assert json.loads((ws.root / "package.json").read_text())["version"].startswith("1.0.0-harness.")
        root = ws.root
    assert not root.exists()
    assert {p: p.read_bytes() for p in ctx.rglob("*") if p.is_file()} == before


def test_workspace_says_why_a_scenario_cannot_be_made(tmp_path):
    (tmp_path / "README.md").write_text("no code here")
    with scenarios.Workspace(tmp_path, "r") as ws:
        assert ws.unavailable("source-change") == "no application source file in the context"
        assert ws.unavailable("dependency-change") == "no package.json in the context"

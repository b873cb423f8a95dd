"""The Claude Code plugin and marketplace files: parse, required fields, paths, and agreement with pyproject.

No network and no `claude` binary: these are the checks `claude plugin validate` would make that
matter here, written from Claude Code's documentation (code.claude.com/docs/en/...):

- plugins/marketplace-reference: `.claude-plugin/marketplace.json`; top level `name`, `owner` and
  `plugins` are required, `owner.name` is required; each plugin entry requires `name` and `source`;
  names use letters, digits, `.`, `_` and `-` and start with a letter or digit; a relative-path
  source starts with `./` (or is `.`), resolves from the marketplace root and may not contain `..`.
  `plugin.json`'s `version` wins over the entry's, and validate warns when both are set and differ.
- plugins/manifest-reference: `.claude-plugin/plugin.json`; `name` is the only required key
  (kebab-case); validate warns without `version`, `description` or `author`, and `author.name` is
  required when `author` is set; every other plugin file lives at the plugin root, not in
  `.claude-plugin/`; component paths start with `./`, stay inside the plugin and must exist;
  `hooks/hooks.json` and `.mcp.json` are loaded by default and the manifest's `mcpServers` is loaded
  after `.mcp.json` (a later server of the same name replaces an earlier one).
  `${CLAUDE_PLUGIN_DATA}` is deleted when the plugin is uninstalled, so the index must not live there.
- hooks: a plugin hooks file wraps the event map in a top-level `"hooks"` key; a matcher group has
  an optional `matcher` and a `hooks` list of handlers; a command handler needs `type: "command"`
  and `command`, and may set `args`, `timeout` (seconds) and `async` (command hooks only);
  SessionStart matchers are `startup`, `resume`, `clear`, `compact` (and `fork`); Stop has no
  matcher support.
- skills (and the Agent Skills spec it follows): `SKILL.md` opens with YAML frontmatter on line 1;
  `name` is 1-64 lowercase letters, digits and hyphens, no leading, trailing or doubled hyphen,
  matching the directory; `description` (what and when, 1-1024 characters) is what Claude reads
  to decide when to load the skill.
- plugins/components: a plugin MCP server's tools are named `mcp__plugin_<plugin>_<server>__<tool>`.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The plugin is its own folder: Claude Code copies a local plugin's folder whole into its
# cache, and the repository root holds virtualenvs.
PLUGIN_ROOT = ROOT / "plugin"
MARKETPLACE = ROOT / ".claude-plugin" / "marketplace.json"
MANIFEST = PLUGIN_ROOT / ".claude-plugin" / "plugin.json"
HOOKS = PLUGIN_ROOT / "hooks" / "hooks.json"
PLUGIN_MCP = PLUGIN_ROOT / ".mcp.json"  # the plugin root's default MCP file; optional
SKILL = PLUGIN_ROOT / "skills" / "session-search" / "SKILL.md"

MARKETPLACE_REQUIRED = ("name", "owner", "plugins")
OWNER_REQUIRED = ("name",)
ENTRY_REQUIRED = ("name", "source")
MANIFEST_REQUIRED = ("name",)
MANIFEST_EXPECTED = ("version", "description", "author")  # validate warns without them
COMPONENT_KEYS = ("skills", "commands", "agents", "hooks", "mcpServers", "lspServers", "outputStyles")
ID_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

SESSION_START_SOURCES = {"startup", "resume", "clear", "compact"}
SHORT_TIMEOUT_S = 60  # the default for command hooks is 600; ours must stay well under it

TRIGGER_PHRASES = (
    "what did we decide about",
    "have i seen this error before",
    "how did i fix",
    "find the session where",
    "last time we",
    "didn't we already",
)

SERVER_TOOLS = ("search", "read_session")


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.fixture(scope="module")
def marketplace() -> dict[str, Any]:
    return load_json(MARKETPLACE)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_json(MANIFEST)


@pytest.fixture(scope="module")
def hooks() -> dict[str, Any]:
    return load_json(HOOKS)


def json_files() -> list[Path]:
    files = [MARKETPLACE, MANIFEST, HOOKS]
    return files + ([PLUGIN_MCP] if PLUGIN_MCP.exists() else [])


def plugin_root(entry: dict[str, Any]) -> Path:
    """The directory a relative-path marketplace entry points at, resolved from the marketplace root."""
    source = entry["source"]
    assert isinstance(source, str), "this marketplace ships its plugin in the same repository: a relative path"
    assert source == "." or source.startswith("./"), f"relative source must start with ./: {source!r}"
    assert ".." not in Path(source).parts and "\\" not in source, source
    root = (ROOT / source).resolve()
    assert root == ROOT or ROOT in root.parents, f"source escapes the marketplace root: {source}"
    return root


def our_entry(marketplace: dict[str, Any], project: dict[str, Any]) -> dict[str, Any]:
    entries = [e for e in marketplace["plugins"] if e.get("name") == project["name"]]
    assert len(entries) == 1, f"exactly one marketplace entry named {project['name']!r}"
    return entries[0]


def component_path(root: Path, value: str) -> Path:
    assert value.startswith("./") or value == ".", f"component paths start with ./: {value!r}"
    path = (root / value).resolve()
    assert path == root or root in path.parents, f"path escapes the plugin directory: {value}"
    return path


def mcp_map(data: dict[str, Any]) -> dict[str, Any]:
    """An `.mcp.json`-shaped file: servers under `mcpServers`, or at the top level."""
    return data.get("mcpServers", data)


def plugin_mcp_servers(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The plugin's MCP servers as Claude Code merges them: `.mcp.json` first, then `mcpServers` in order."""
    servers: dict[str, Any] = {}
    if (root / ".mcp.json").exists():
        servers.update(mcp_map(load_json(root / ".mcp.json")))
    declared = manifest.get("mcpServers")
    for item in declared if isinstance(declared, list) else [declared] if declared else []:
        if isinstance(item, str):
            assert item.endswith(".json"), f"only JSON MCP configs are expected here: {item}"
            servers.update(mcp_map(load_json(component_path(root, item))))
        else:
            servers.update(item)
    return servers


def handlers(hooks: dict[str, Any], event: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(group, handler) for group in hooks["hooks"].get(event, []) for handler in group["hooks"]]


def command_line(handler: dict[str, Any]) -> str:
    """The handler's command as one line, for shell form and exec form (`args`) alike."""
    parts = [handler["command"], *handler.get("args", [])]
    return " ".join(parts) if "args" in handler else handler["command"]


def frontmatter(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines and lines[0] == "---", "frontmatter must open on the first line"
    end = lines.index("---", 1)
    raw = "\n".join(lines[1:end])
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with chromadb
        meta = dict(line.split(": ", 1) for line in raw.splitlines() if ": " in line)
    else:
        meta = yaml.safe_load(raw)
    assert isinstance(meta, dict), "frontmatter must be a YAML mapping"
    return meta, "\n".join(lines[end + 1 :])


def normalise(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2026", "...").lower()


# --- every file ---


@pytest.mark.parametrize("path", json_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_json_file_parses_to_an_object(path: Path) -> None:
    assert isinstance(load_json(path), dict)


def test_claude_plugin_dirs_hold_only_the_manifests() -> None:
    assert sorted(p.name for p in (ROOT / ".claude-plugin").iterdir()) == ["marketplace.json"]
    assert sorted(p.name for p in (PLUGIN_ROOT / ".claude-plugin").iterdir()) == ["plugin.json"]


def test_the_plugin_folder_holds_only_plugin_files() -> None:
    """Claude Code copies the whole folder into its cache on install: nothing else may be there."""
    top = sorted(p.name for p in PLUGIN_ROOT.iterdir())
    assert top == [".claude-plugin", "hooks", "skills"]


@pytest.mark.parametrize("path", [*json_files(), SKILL], ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_at_the_plugin_data_dir(path: Path) -> None:
    """The index stays in the XDG data dir: ${CLAUDE_PLUGIN_DATA} is deleted on uninstall."""
    text = path.read_text(encoding="utf-8")
    assert "CLAUDE_PLUGIN_DATA" not in text
    assert "plugins/data" not in text


# --- marketplace.json ---


def test_marketplace_required_fields(marketplace: dict[str, Any]) -> None:
    for key in MARKETPLACE_REQUIRED:
        assert marketplace.get(key), f"marketplace.json needs {key!r}"
    assert isinstance(marketplace["owner"], dict)
    for key in OWNER_REQUIRED:
        assert isinstance(marketplace["owner"].get(key), str) and marketplace["owner"][key].strip()
    assert isinstance(marketplace["plugins"], list) and marketplace["plugins"]
    assert isinstance(marketplace.get("description"), str) and marketplace["description"], "validate warns without it"
    assert ID_PART.match(marketplace["name"]) and ".." not in marketplace["name"]


def test_marketplace_entries(marketplace: dict[str, Any]) -> None:
    names = [entry.get("name") for entry in marketplace["plugins"]]
    assert len(names) == len(set(names)), "duplicate plugin names"
    for entry in marketplace["plugins"]:
        for key in ENTRY_REQUIRED:
            assert entry.get(key), f"plugin entry needs {key!r}: {entry}"
        assert ID_PART.match(entry["name"]), entry["name"]


def test_marketplace_names_and_versions_follow_pyproject(marketplace: dict[str, Any], project: dict[str, Any]) -> None:
    assert marketplace["name"] == project["name"] == "session-search"
    entry = our_entry(marketplace, project)
    versions = {
        "version": marketplace.get("version"),
        "metadata.version": marketplace.get("metadata", {}).get("version"),
        "plugins[].version": entry.get("version"),
    }
    assert any(versions.values()), "the marketplace should state its version"
    for where, version in versions.items():
        assert version in (None, project["version"]), f"{where} is {version}, pyproject says {project['version']}"


def test_marketplace_source_is_this_plugin(
    marketplace: dict[str, Any], manifest: dict[str, Any], project: dict[str, Any]
) -> None:
    root = plugin_root(our_entry(marketplace, project))
    assert root == PLUGIN_ROOT, "the plugin is the plugin/ folder"
    assert (root / ".claude-plugin" / "plugin.json").is_file()
    assert manifest["name"] == our_entry(marketplace, project)["name"]


# --- plugin.json ---


def test_manifest_required_fields(manifest: dict[str, Any]) -> None:
    for key in MANIFEST_REQUIRED + MANIFEST_EXPECTED:
        assert manifest.get(key), f"plugin.json should set {key!r}"
    assert KEBAB.match(manifest["name"])
    assert isinstance(manifest["author"], dict) and manifest["author"].get("name")
    if "homepage" in manifest:
        assert re.match(r"^https?://", manifest["homepage"]), "an unparsable homepage stops the plugin loading"


def test_manifest_name_and_version_follow_pyproject(manifest: dict[str, Any], project: dict[str, Any]) -> None:
    assert manifest["name"] == project["name"]
    assert manifest["version"] == project["version"]
    assert manifest.get("license", project["license"]) == project["license"]


def test_manifest_component_paths_exist(manifest: dict[str, Any]) -> None:
    for key in COMPONENT_KEYS:
        value = manifest.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                assert component_path(PLUGIN_ROOT, item).exists(), f"{key}: {item} not found"


def test_manifest_does_not_repeat_the_default_hooks_file(manifest: dict[str, Any]) -> None:
    """hooks/hooks.json loads by default; naming it in the manifest too is a duplicate-load error."""
    value = manifest.get("hooks")
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            assert component_path(PLUGIN_ROOT, item) != HOOKS.resolve()


def test_default_component_locations_exist() -> None:
    assert HOOKS.is_file()
    skills = sorted((PLUGIN_ROOT / "skills").glob("*/SKILL.md"))
    assert SKILL in skills


# --- MCP server ---


def test_mcp_server_runs_the_installed_command(manifest: dict[str, Any], project: dict[str, Any]) -> None:
    servers = plugin_mcp_servers(PLUGIN_ROOT, manifest)
    assert set(servers) == {"session-search"}, f"one server, named after the tool: {sorted(servers)}"
    server = servers["session-search"]
    assert server.get("type", "stdio") == "stdio"
    assert server["command"] == "session-search"
    assert server["args"] == ["serve"]
    assert server["command"] in project["scripts"], "the console script pip installs"
    assert "SESSION_SEARCH_DATA_DIR" not in server.get("env", {}), "the index stays in the XDG data dir"


# --- hooks/hooks.json ---


def test_hooks_file_shape(hooks: dict[str, Any]) -> None:
    assert isinstance(hooks.get("hooks"), dict), "a plugin hooks file wraps the events in a top-level 'hooks' key"
    assert set(hooks) <= {"description", "hooks"}
    for event, groups in hooks["hooks"].items():
        assert isinstance(groups, list) and groups, event
        for group in groups:
            assert isinstance(group.get("hooks"), list) and group["hooks"], f"{event}: a matcher group needs handlers"
            for handler in group["hooks"]:
                assert handler.get("type") == "command" and handler.get("command"), f"{event}: {handler}"
                timeout = handler.get("timeout")
                assert isinstance(timeout, int) and 0 < timeout <= SHORT_TIMEOUT_S, f"{event}: short timeout, got {timeout}"


def test_session_start_hook(hooks: dict[str, Any]) -> None:
    found = handlers(hooks, "SessionStart")
    assert len(found) == 1
    group, handler = found[0]
    assert set(re.split(r"\s*[|,]\s*", group["matcher"])) == SESSION_START_SOURCES
    assert shlex.split(command_line(handler)) == ["session-search", "hook", "SessionStart"]
    assert not handler.get("async"), "SessionStart output is context for Claude; it runs before the first reply"


def test_stop_hook(hooks: dict[str, Any]) -> None:
    found = handlers(hooks, "Stop")
    assert len(found) == 1
    group, handler = found[0]
    assert "matcher" not in group, "Stop has no matcher support"
    assert shlex.split(command_line(handler)) == ["session-search", "hook", "Stop"]
    assert handler.get("async") is True, "indexing must not hold up the turn"


def test_hooks_only_call_session_search(hooks: dict[str, Any]) -> None:
    for groups in hooks["hooks"].values():
        for group in groups:
            for handler in group["hooks"]:
                assert shlex.split(command_line(handler))[:2] == ["session-search", "hook"]


# --- skills/session-search/SKILL.md ---


def test_skill_frontmatter(project: dict[str, Any]) -> None:
    meta, _ = frontmatter(SKILL)
    assert meta.get("name") == SKILL.parent.name == project["name"]
    assert 1 <= len(meta["name"]) <= 64 and KEBAB.match(meta["name"])
    description = meta.get("description")
    assert isinstance(description, str) and 1 <= len(description) <= 1024


@pytest.mark.parametrize("phrase", TRIGGER_PHRASES)
def test_skill_description_has_trigger_phrase(phrase: str) -> None:
    meta, _ = frontmatter(SKILL)
    assert phrase in normalise(meta["description"])


def test_skill_body_explains_the_tools() -> None:
    _, body = frontmatter(SKILL)
    for word in (*SERVER_TOOLS, "project", "since", "until", "session_id", "chunk_id", "claude --resume"):
        assert f"`{word}" in body, f"the skill should mention `{word}`"
    assert len(body.strip().splitlines()) <= 60, "keep the skill short: it stays in context once loaded"


def test_skill_allowed_tools_name_this_plugins_server(manifest: dict[str, Any]) -> None:
    meta, _ = frontmatter(SKILL)
    allowed = meta.get("allowed-tools", "")
    names = allowed if isinstance(allowed, list) else re.split(r"[\s,]+", allowed.strip())
    servers = plugin_mcp_servers(PLUGIN_ROOT, manifest)
    prefixes = {f"mcp__plugin_{manifest['name']}_{server}__" for server in servers}
    for name in filter(None, names):
        assert any(name.startswith(prefix) for prefix in prefixes), f"{name} is not a tool of this plugin's server"
        assert not name.endswith("__reindex"), "reindex writes; leave it to the normal permission prompt"

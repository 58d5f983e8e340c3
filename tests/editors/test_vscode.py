"""The VS Code extension (editors/vscode): installs, builds, passes its unit tests, packages with its client
library, activates against the real `cove lsp`, and drives the server (and the real model) through the protocol
library VS Code's client uses.

These are the quick checks: `scripts/activate-test.cjs` activates the bundle with a stand-in for the `vscode`
module, and `scripts/protocol-test.mjs` speaks to the server with vscode-languageserver-protocol as VS Code's client
would. tests/editors/test_vscode_workbench.py runs the same .vsix in a real VS Code workbench.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import require

EXTENSION = Path(__file__).resolve().parents[2] / "editors" / "vscode"


def npm_binary() -> str:
    found = shutil.which("npm")
    require("" if found else "npm missing", "install Node.js 20 or later (with npm) to build and test the extension")
    assert found is not None
    return found


def run(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `command` in the extension's folder; a failure shows its output."""
    started = time.monotonic()
    done = subprocess.run(command, cwd=EXTENSION, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, (
        f"`{' '.join(command)}` exited with {done.returncode} after {elapsed:.1f} s\n"
        f"--- stdout ---\n{done.stdout[-6000:]}\n--- stderr ---\n{done.stderr[-6000:]}"
    )
    return done


def node_modules_current() -> bool:
    """Whether node_modules holds what package-lock.json pins (npm's own record of what it installed says so).

    Optional packages for other platforms are in the lock file but never installed; they do not count.
    """
    installed_record = EXTENSION / "node_modules" / ".package-lock.json"
    lock_file = EXTENSION / "package-lock.json"
    if not installed_record.is_file():
        return False
    installed: dict[str, dict[str, object]] = json.loads(installed_record.read_text())["packages"]
    locked: dict[str, dict[str, object]] = json.loads(lock_file.read_text())["packages"]
    for path, entry in locked.items():
        if not path:
            continue
        if path in installed:
            if installed[path].get("version") != entry.get("version"):
                return False
        elif not entry.get("optional"):
            return False
    return all(path in locked for path in installed)


def archive_text(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name).decode()


@pytest.mark.model  # the protocol test loads the real model
def test_vscode_extension_builds_packages_and_talks_to_the_server(tmp_path: Path, clean_env: dict[str, str]) -> None:
    npm = npm_binary()
    env = dict(clean_env, npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false")

    if not node_modules_current():
        run([npm, "ci", "--no-audit", "--no-fund"], env, timeout=600)
    run([npm, "run", "build"], env, timeout=180)
    assert (EXTENSION / "out" / "extension.js").is_file()
    assert (EXTENSION / "dist" / "extension.js").is_file(), "npm run build bundles too (vscode:prepublish)"
    run([npm, "run", "typecheck"], env, timeout=180)
    tests = run([npm, "test"], env, timeout=180)
    assert "passed" in tests.stdout, tests.stdout

    vsix = tmp_path / "cove.vsix"
    run([npm, "run", "package", "--", "--out", str(vsix)], env, timeout=300)
    with zipfile.ZipFile(vsix) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("extension/package.json"))
        bundle = archive.read("extension/dist/extension.js").decode()
    # One bundle (esbuild) with the client libraries inside (LSP's and ACP's), the licence, the view container's icon,
    # and nothing of the sources or node_modules.
    shipped = sorted(name for name in names if name.startswith("extension/"))
    assert shipped == [
        "extension/LICENSE.txt",
        "extension/dist/extension.js",
        "extension/dist/extension.js.map",
        "extension/media/cove.svg",
        "extension/package.json",
        "extension/readme.md",
    ], shipped
    assert "vscode-languageclient" in bundle or "LanguageClient" in bundle, "the client library is bundled"
    assert "session/request_permission" in bundle, "the ACP client (the agent view) is bundled"
    assert 'require("vscode")' in bundle, "vscode stays external"
    assert "Apache License" in archive_text(vsix, "extension/LICENSE.txt")
    assert manifest["main"] == "./dist/extension.js"

    # The built extension, activated with a stand-in `vscode` module: the real client starts the real server.
    cove = shutil.which("cove", path=str(Path(sys.executable).parent))
    assert cove, f"no cove executable next to {sys.executable}"
    activated = run([npm, "run", "--silent", "activate-test"], dict(env, COVE_EXTENSION_PATH=cove), timeout=240)
    assert "activate test passed" in activated.stdout, activated.stdout

    protocol_env = dict(env, COVE_LSP_CMD=json.dumps([sys.executable, "-m", "cove.cli", "lsp"]))
    done = run([npm, "run", "--silent", "protocol-test"], protocol_env, timeout=240)
    assert "protocol test passed" in done.stdout, done.stdout
    assert "inlineCompletion: ok" in done.stdout, done.stdout


def test_manifest_contributes_the_palette_commands_and_settings() -> None:
    """package.json names each palette command and setting the README documents (no npm needed)."""
    manifest = json.loads((EXTENSION / "package.json").read_text())
    titles = {command["command"]: command["title"] for command in manifest["contributes"]["commands"]}
    assert titles == {
        "cove.palette.ask": "Ask about the repository",
        "cove.palette.agent": "Run an agent task",
        "cove.palette.approvePlan": "Approve plan",
        "cove.palette.rejectPlan": "Reject plan",
        "cove.palette.cancel": "Cancel",
        "cove.palette.undo": "Undo the last agent change",
        "cove.palette.transcript": "Show transcript",
        "cove.palette.status": "Show status",
        "cove.palette.restart": "Restart server",
        "cove.palette.showContext": "Show the completion context here",
        "cove.palette.commitMessage": "Write a commit message (local model)",
        "cove.palette.agentView": "Open the agent view",
        "cove.palette.askSelection": "Ask Cove about this",
    }
    properties = manifest["contributes"]["configuration"]["properties"]
    assert set(properties) == {
        "cove.path",
        "cove.completion.maxTokens",
        "cove.completion.multiline",
        "cove.remote.baseUrl",
        "cove.remote.model",
        "cove.remote.offline",
        "cove.agent.mode",
    }
    assert properties["cove.path"]["default"] == "cove"
    assert properties["cove.remote.offline"]["default"] is True
    assert properties["cove.completion.multiline"]["enum"] == ["auto", "never", "always"]
    assert properties["cove.agent.mode"]["enum"] == ["ask", "auto-read", "full-auto"]
    assert set(manifest["dependencies"]) == {"vscode-languageclient", "@agentclientprotocol/sdk"}, "bundled clients"
    assert manifest["contributes"]["views"] == {"cove": [{"type": "webview", "id": "cove.agentView", "name": "Agent"}]}
    readme = (EXTENSION / "README.md").read_text()
    for name in properties:
        assert f"`{name}`" in readme, f"README.md does not document {name}"
    for title in titles.values():
        assert f"Cove: {title}" in readme, f"README.md does not document Cove: {title}"

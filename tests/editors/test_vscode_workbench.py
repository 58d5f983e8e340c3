"""Cove in a real VS Code workbench: code-server (VS Code for the browser) with the extension installed from its .vsix,
the real `cove lsp` and the real model, driven like a user by Debian's Chromium through Playwright. What VS Code
users see is what this checks: ghost text while typing, Tab accepting it, the acceptance counted by `cove stats`.

code-server is installed by scripts/test into build/code-server (Node 24 from PyPI); screenshots go to
build/screenshots/ for the docs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.editors.test_vscode import EXTENSION, npm_binary, run

REPO = Path(__file__).resolve().parents[2]
CODE_SERVER = REPO / "build" / "code-server"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "build" / "screenshots"

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        not (CODE_SERVER / "node_modules" / ".bin" / "code-server").exists() or not CHROMIUM.exists(),
        reason="code-server (scripts/test installs it in build/code-server) and Debian's chromium are needed",
    ),
]

#: What a user of Cove would set: the extension's cove, and VS Code's own helpers that would get in the way out.
SETTINGS = {
    "files.autoSave": "off",
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "editor.autoIndent": "none",
}


@dataclass
class Workbench:
    page: object  # playwright's Page
    workspace: Path
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def workbench(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[Workbench]:
    from playwright.sync_api import sync_playwright

    npm = npm_binary()
    vsix = tmp_path / "cove.vsix"
    env = dict(clean_env, npm_config_update_notifier="false")
    if not (EXTENSION / "node_modules").is_dir():
        run([npm, "ci", "--no-audit", "--no-fund"], env, timeout=600)
    run([npm, "run", "package", "--", "--out", str(vsix)], env, timeout=300)
    data, extensions, workspace = tmp_path / "data", tmp_path / "extensions", tmp_path / "project"
    for folder in (data / "User", extensions, workspace):
        folder.mkdir(parents=True)
    settings = dict(SETTINGS, **{"cove.path": str(Path(sys.executable).parent / "cove")})
    (data / "User" / "settings.json").write_text(json.dumps(settings))
    (workspace / "shapes.py").write_text("import math\n\n\ndef area(radius):\n    return math.pi * radius**2\n\n\n")
    # code-server's own Node 24 first on PATH; `cove lsp` inherits this environment (its model in-process).
    env = dict(clean_env, PATH=f"{CODE_SERVER / 'bin'}{os.pathsep}{clean_env['PATH']}")
    code_server = str(CODE_SERVER / "node_modules" / ".bin" / "code-server")
    dirs = ["--user-data-dir", str(data), "--extensions-dir", str(extensions)]
    run([code_server, *dirs, "--install-extension", str(vsix)], env, timeout=120)
    port = free_port()
    flags = ["--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--disable-telemetry", "--disable-update-check"]
    log = (tmp_path / "code-server.log").open("w")
    server = subprocess.Popen(
        [code_server, *flags, "--disable-workspace-trust", *dirs, str(workspace)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its process group goes at the end (a watcher child lingers otherwise)
    )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            deadline = time.monotonic() + 60
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/?folder={workspace}")
                    break
                except Exception:
                    assert time.monotonic() < deadline and server.poll() is None, "code-server did not answer"
                    time.sleep(0.2)
            page.wait_for_selector(".monaco-workbench", timeout=120_000)
            yield Workbench(page, workspace, env)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        log.close()


def open_when_ready(page: object, name: str) -> None:
    """Open `name` from the explorer, then wait on the extension's own state: the status bar saying the server is
    ready (no fixed sleeps)."""
    page.click(f".explorer-folders-view .monaco-list-row:has-text('{name}')", timeout=60_000)  # type: ignore[attr-defined]
    page.wait_for_selector(".monaco-editor .view-lines", timeout=60_000)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => [...document.querySelectorAll('.statusbar-item')]"
        ".some(e => e.textContent.includes('Cove:') && e.textContent.includes('ready'))",
        timeout=180_000,
    )


def editor_lines(page: object) -> list[str]:
    lines = page.query_selector_all(".monaco-editor .view-line")  # type: ignore[attr-defined]
    return [(line.text_content() or "").replace("\u00a0", " ") for line in lines]


def test_ghost_text_while_typing_tab_accepts_it_and_cove_stats_counts_it(workbench: Workbench) -> None:
    page = workbench.page
    open_when_ready(page, "shapes.py")
    page.click(".monaco-editor .view-lines")  # type: ignore[attr-defined]
    page.keyboard.press("Control+End")  # type: ignore[attr-defined]
    page.keyboard.type("def circumference(radius):\n    return ")  # type: ignore[attr-defined]
    ghost = page.wait_for_selector(".ghost-text-decoration", timeout=120_000)  # type: ignore[attr-defined]
    suggested = (ghost.text_content() or "").replace("\u00a0", " ")
    assert suggested.strip(), "ghost text with a suggestion"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "vscode-ghost-text.png"))  # type: ignore[attr-defined]
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = editor_lines(page)
        if any(line.startswith("    return ") and suggested.strip() in line for line in lines):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"Tab did not accept {suggested!r}: {editor_lines(page)}")
    # The server writes its counts at exit: "Cove: Restart server" from the palette stops it (and starts another).
    page.keyboard.press("F1")  # type: ignore[attr-defined]
    page.keyboard.type("Cove: Restart server")  # type: ignore[attr-defined]
    page.wait_for_selector(".quick-input-list .monaco-list-row:has-text('Restart server')")  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = subprocess.run(
            [sys.executable, "-m", "cove.cli", "stats"], env=workbench.env, capture_output=True, text=True, check=False
        ).stdout
        totals = next((line.split() for line in stats.splitlines() if line.startswith("all")), [])
        if len(totals) >= 3 and int(totals[2]) == 1:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"cove stats did not count the acceptance:\n{stats}")


def test_the_refactor_menu_offers_a_docstring_reviewed_and_applied(workbench: Workbench) -> None:
    """With the default model only: VS Code's Refactor menu lists the local model's docstring action; it is
    written, its diff shown, and VS Code's dialog applies it."""
    page = workbench.page
    open_when_ready(page, "shapes.py")
    # A click leaves the cursor at the end of the line: the actions must be found there too (they were not).
    page.click(".monaco-editor .view-line:has-text('return math.pi')")  # type: ignore[attr-defined]
    menu = None
    for _ in range(4):  # the first request may come before the server has the document; ask again, as a user would
        page.keyboard.press("F1")  # type: ignore[attr-defined]
        page.keyboard.type("Refactor...")  # type: ignore[attr-defined]
        page.wait_for_selector(".quick-input-list .monaco-list-row:has-text('Refactor...')")  # type: ignore[attr-defined]
        page.keyboard.press("Enter")  # type: ignore[attr-defined]
        try:
            menu = page.wait_for_selector(".action-widget", timeout=20_000)  # type: ignore[attr-defined]
            break
        except Exception:
            page.keyboard.press("Escape")  # type: ignore[attr-defined]
            page.click(".monaco-editor .view-line:has-text('return math.pi')")  # type: ignore[attr-defined]
    assert menu is not None, "VS Code's Refactor menu never listed Cove's actions"
    page.wait_for_selector(".action-widget :text('add a docstring to area')", timeout=60_000)  # type: ignore[attr-defined]
    listed = menu.text_content() or ""
    assert "Cove: add a docstring to area (local model)" in listed, listed
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "vscode-refactor-menu.png"))  # type: ignore[attr-defined]
    page.click(".action-widget :text('add a docstring to area')")  # type: ignore[attr-defined]
    apply = page.wait_for_selector(".notification-toast .monaco-button:has-text('Apply')", timeout=120_000)  # type: ignore[attr-defined]
    page.screenshot(path=str(SCREENSHOTS / "vscode-review.png"))  # type: ignore[attr-defined]
    apply.click()
    page.click(".tabs-container .tab:has-text('shapes.py')")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = editor_lines(page)
        if len(lines) > 4 and lines[4].startswith('    """'):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the docstring was not applied: {editor_lines(page)}")

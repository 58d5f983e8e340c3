"""A real VS Code workbench for tests and benchmarks: code-server (VS Code for the browser) with Cove's extension
installed from its .vsix, driven like a user by Debian's Chromium through Playwright.

code-server is installed by scripts/test into build/code-server (Node 24 from PyPI). `open_workbench` builds the
.vsix, writes the user's settings, starts code-server on a free loopback port in its own session (its process group
is killed at the end: a watcher child lingers otherwise) and yields a `Workbench` whose helpers act as a user does:
the palette, the explorer, notifications and their buttons, the status bar.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "editors" / "vscode"
CODE_SERVER = REPO / "build" / "code-server"
CODE_SERVER_BIN = CODE_SERVER / "node_modules" / ".bin" / "code-server"
#: Chromium found on PATH (Debian's `chromium`, `chromium-browser` elsewhere).
CHROMIUM = Path(shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium")
SCREENSHOTS = REPO / "build" / "screenshots"

#: What a user of Cove would set: VS Code's own helpers that would get in the way out.
SETTINGS: dict[str, Any] = {
    "files.autoSave": "off",
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "editor.autoIndent": "none",
    "typescript.disableAutomaticTypeAcquisition": True,  # offline: it would try the npm registry
}

#: Settings of machine scope: in a remote window (code-server is one) VS Code reads them from the remote's own
#: settings (`<user-data-dir>/Machine/settings.json`, the Settings editor's Remote tab), not the user's.
MACHINE_SETTINGS = {"cove.path"}

#: Every text the Cove status bar item shows, recorded from the first paint (before the extension activates).
RECORD_STATUS = """
window.__coveStatus = [];
new MutationObserver(() => {
  for (const item of document.querySelectorAll('.statusbar-item')) {
    const text = (item.textContent || '').trim();
    if (text.includes('Cove:') && window.__coveStatus[window.__coveStatus.length - 1] !== text) {
      window.__coveStatus.push(text);
    }
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


#: The active editor's lines as the document has them: without the ghost text drawn inside them.
LINES = """() => [...document.querySelectorAll('.editor-group-container.active .monaco-editor .view-line')]
  .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
  .map(line => {
    const copy = line.cloneNode(true);
    copy.querySelectorAll('[class*="ghost-text"]').forEach(ghost => ghost.remove());
    return copy.textContent;
  })"""


def missing() -> str:
    """What the workbench tests lack here ("" when nothing)."""
    lacking = [name for name, path in (("code-server", CODE_SERVER_BIN), ("chromium", CHROMIUM)) if not path.exists()]
    return " and ".join(lacking) + " missing" if lacking else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_vsix(out: Path, env: Mapping[str, str]) -> Path:
    """The extension packaged as users get it (`npm run package`: built, bundled, licensed)."""
    npm = "npm"
    env = dict(env, npm_config_update_notifier="false")
    if not (EXTENSION / "node_modules").is_dir():
        _run([npm, "ci", "--no-audit", "--no-fund"], EXTENSION, env, 600)
    vsix = out / "cove.vsix"
    _run([npm, "run", "package", "--", "--out", str(vsix)], EXTENSION, env, 300)
    return vsix


def _run(command: list[str], cwd: Path, env: Mapping[str, str], timeout: float) -> None:
    done = subprocess.run(command, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"`{' '.join(command)}` failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


@dataclass
class Workbench:
    """The page and what a test needs to act on it as a user."""

    page: Any  # playwright's Page
    workspace: Path
    env: dict[str, str]
    data: Path  # --user-data-dir
    server: subprocess.Popen[bytes]
    settings: dict[str, Any] = field(default_factory=dict)

    def palette(self, title: str) -> None:
        """Run a command from the palette (F1), by its title."""
        self.page.keyboard.press("F1")
        self.page.keyboard.type(title)
        self.page.wait_for_selector(f".quick-input-list .monaco-list-row:has-text('{title}')")
        self.page.keyboard.press("Enter")

    def open_file(self, name: str) -> None:
        self.page.click(f".explorer-folders-view .monaco-list-row:has-text('{name}')", timeout=60_000)
        self.page.wait_for_selector(f".tabs-container .tab.active:has-text('{name}')", timeout=60_000)
        self.page.wait_for_selector(".monaco-editor .view-lines", timeout=60_000)

    def wait_ready(self, timeout_s: float = 180) -> None:
        """Wait on the extension's own state: the status bar saying a model serves (no fixed sleeps)."""
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('.statusbar-item')].some(e => e.textContent.includes('Cove:') && "
            "/ready|local|daemon|remote/.test(e.textContent) && !e.textContent.includes('loading'))",
            timeout=timeout_s * 1000,
        )

    def status_history(self) -> list[str]:
        """Every text the Cove status bar item has shown, in order."""
        return list(self.page.evaluate("() => window.__coveStatus"))

    def notification(self, text: str, timeout_s: float = 120) -> Any:
        """The notification toast that says `text` (it may come and go while the centre is closed)."""
        return self.page.wait_for_selector(
            f".notification-toast:has-text({json.dumps(text)})", timeout=timeout_s * 1000
        )

    def click_button(self, toast: Any, label: str) -> None:
        toast.wait_for_selector(f".monaco-button:has-text('{label}')").click()

    def lines(self) -> list[str]:
        """The active editor's visible lines, ghost text left out (Monaco draws it inside the line, and renders
        spaces as U+00A0)."""
        lines: list[str] = self.page.evaluate(LINES)
        return [line.replace("\u00a0", " ") for line in lines]

    def ghost_line(self) -> str:
        """The line that shows ghost text, the ghost text in it (drawn in pieces, one span per token colour)."""
        line: str = self.page.evaluate(
            "() => document.querySelector('.view-line:has(.ghost-text-decoration)')?.textContent ?? ''"
        )
        return line.replace("\u00a0", " ")

    def wait_lines(self, check: Any, timeout_s: float = 30, what: str = "the editor's lines") -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lines = self.lines()
            if check(lines):
                return lines
            time.sleep(0.2)
        raise AssertionError(f"{what} never matched: {self.lines()}")

    def set_settings(self, **changes: Any) -> None:
        """Change settings as the Settings editor would write them (VS Code watches the files)."""
        self.settings.update(changes)
        write_settings(self.data, self.settings)

    def change_setting(self, key: str, value: str) -> None:
        """Change a user setting as a user does: in the Settings editor, searched by its id, typed into its box."""
        self.page.keyboard.press("Escape")
        self.palette("Preferences: Open User Settings")
        self.page.wait_for_selector(".settings-editor")
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(key)
        self.page.wait_for_selector(".settings-editor :text('1 Setting Found')", timeout=30_000)
        box = self.page.wait_for_selector(
            ".settings-editor .setting-item-contents .setting-item-control input", timeout=30_000
        )
        box.fill(value)
        box.press("Tab")
        self.settings[key] = value
        time.sleep(1)  # the editor writes the change after a short pause of its own
        self.page.keyboard.press("Escape")  # the Settings dialog

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path))
        return path

    def cove_servers(self) -> list[int]:
        """PIDs of the `cove lsp` processes the extension started (code-server's session holds them)."""
        return self.cove_processes(b"lsp")

    def cove_processes(self, face: bytes) -> list[int]:
        """PIDs of the `cove <face>` processes (`lsp`, `acp`) the extension started, in code-server's session."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
                session = os.getsid(int(entry.name))
            except (OSError, ProcessLookupError):
                continue
            if session == self.server.pid and face in command and any(part.endswith(b"cove") for part in command):
                found.append(int(entry.name))
        return found


def write_settings(data: Path, settings: Mapping[str, Any]) -> None:
    """The user's settings, and the machine's where VS Code reads those (MACHINE_SETTINGS)."""
    for scope, keep in (("User", False), ("Machine", True)):
        (data / scope).mkdir(parents=True, exist_ok=True)
        chosen = {key: value for key, value in settings.items() if (key in MACHINE_SETTINGS) == keep}
        (data / scope / "settings.json").write_text(json.dumps(chosen, indent=2))


@contextmanager
def open_workbench(
    tmp_path: Path, env: Mapping[str, str], files: Mapping[str, str], settings: Mapping[str, Any] | None = None
) -> Iterator[Workbench]:
    """code-server on `files` (written into a fresh workspace) with Cove installed, and Chromium on it."""
    from playwright.sync_api import sync_playwright

    vsix = build_vsix(tmp_path, env)
    data, extensions, workspace = tmp_path / "data", tmp_path / "extensions", tmp_path / "project"
    for folder in (extensions, workspace):
        folder.mkdir(parents=True, exist_ok=True)
    user = {**SETTINGS, "cove.path": str(Path(sys.executable).parent / "cove"), **(settings or {})}
    write_settings(data, user)
    for name, text in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    # code-server's own Node 24 first on PATH; `cove lsp` inherits this environment.
    env = dict(env, PATH=f"{CODE_SERVER / 'bin'}{os.pathsep}{env['PATH']}")
    dirs = ["--user-data-dir", str(data), "--extensions-dir", str(extensions)]
    _run([str(CODE_SERVER_BIN), *dirs, "--install-extension", str(vsix)], tmp_path, env, 120)
    port = free_port()
    flags = ["--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--disable-telemetry", "--disable-update-check"]
    log = (tmp_path / "code-server.log").open("w")
    server = subprocess.Popen(
        [str(CODE_SERVER_BIN), *flags, "--disable-workspace-trust", *dirs, str(workspace)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.add_init_script(RECORD_STATUS)
            deadline = time.monotonic() + 60
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/?folder={workspace}")
                    break
                except Exception:
                    assert time.monotonic() < deadline and server.poll() is None, "code-server did not answer"
                    time.sleep(0.2)
            page.wait_for_selector(".monaco-workbench", timeout=120_000)
            try:
                yield Workbench(page, workspace, env, data, server, user)
            except BaseException:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # what the user would have seen, for the failure
                page.screenshot(path=str(SCREENSHOTS / f"failed-{tmp_path.name}.png"))
                raise
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        log.close()

"""The Neovim plugin as a user sees it: Neovim's own terminal UI in a real terminal (tmux), not headless. Ghost text
from the real model is drawn on the screen after the cursor; the screen, colours included, is captured
(`tmux capture-pane -e`), turned into HTML (ansi2html) and photographed with Chromium for the docs
(build/screenshots/neovim-ghost-text.png)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require
from tests.nvim.test_neovim import nvim_binary
from tests.nvim.test_plugin import HERE, PLUGIN, Nvim

pytestmark = [pytest.mark.model, pytest.mark.nvim]


@pytest.fixture(autouse=True)
def terminal_here() -> None:
    require("" if shutil.which("tmux") else "tmux missing", "apt-get install tmux (scripts/test does)")


SCREENSHOTS = HERE.parent.parent / "build" / "screenshots"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
COLUMNS, ROWS = 100, 24

SOURCE = '''import math


def area(radius):
    """The area of a circle."""
    return math.pi * radius**2


def circumference(radius):
    """The length of a circle's edge."""
'''


def capture(tmux: list[str], colours: bool) -> str:
    flags = ["-e"] if colours else []
    return subprocess.run(
        [*tmux, "capture-pane", "-p", *flags, "-t", "cove"], capture_output=True, text=True, check=True
    ).stdout


def test_ghost_text_on_neovims_screen_in_a_terminal(tmp_path: Path, agent_env: dict[str, str]) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    source = project / "shapes.py"
    source.write_text(SOURCE)
    socket = tmp_path / "nvim.sock"
    env = dict(
        agent_env,
        COVE_PLUGIN_DIR=str(PLUGIN),
        COVE_TEST_CMD=json.dumps([sys.executable, "-m", "cove.cli", "lsp"]),
        COVE_AUTO_APPROVE="0",
        TERM="xterm-256color",
        COLORTERM="truecolor",
    )
    tmux = ["tmux", "-L", f"cove-{tmp_path.name}", "-f", "/dev/null"]
    nvim = [nvim_binary(), "--clean", "--listen", str(socket), "-u", str(HERE / "plugin_init.lua"), str(source)]
    size = ["-x", str(COLUMNS), "-y", str(ROWS)]
    subprocess.run([*tmux, "new-session", "-d", "-s", "cove", *size, "-c", str(project), *nvim], env=env, check=True)
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert time.monotonic() < deadline, capture(tmux, colours=False)
            time.sleep(0.05)
        editor = Nvim(socket, env)
        editor.lua('(function() vim.bo.filetype = "python"; vim.o.termguicolors = true; return true end)()')
        editor.wait('(function() local c = require("cove").client(0); return c ~= nil and c.initialized end)()')
        editor.send("Goreturn ")  # under the docstring: autoindent gives the body's indent
        editor.wait('require("cove.ghost").visible()')
        marks = editor.lua(
            'vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_create_namespace("cove.ghost"), 0, -1, {details = true})'
        )
        shown = marks[0][3]["virt_text"][0][0]
        deadline = time.monotonic() + 10
        while f"return {shown}" not in capture(tmux, colours=False):  # drawn by Neovim's UI on the terminal
            assert time.monotonic() < deadline, capture(tmux, colours=False)
            time.sleep(0.1)
        screen = capture(tmux, colours=True)
        buffer = editor.lua("vim.api.nvim_buf_get_lines(0, 0, -1, false)")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
    assert buffer[-1] == "    return " and shown.strip(), (shown, buffer)  # drawn on the screen, not inserted
    assert "\x1b[" in screen, "the capture keeps the colours (ghost text is dimmed)"
    if CHROMIUM.exists():
        photograph(screen, SCREENSHOTS / "neovim-ghost-text.png")


def photograph(screen: str, out: Path) -> None:
    """The terminal's screen as a PNG: its ANSI colours as HTML, rendered by Chromium."""
    from ansi2html import Ansi2HTMLConverter
    from playwright.sync_api import sync_playwright

    page_html = Ansi2HTMLConverter(dark_bg=True, font_size="15px", title="Neovim").convert(screen.rstrip("\n"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": COLUMNS * 9 + 40, "height": ROWS * 19 + 40})
        page.set_content(page_html)
        page.screenshot(path=str(out), full_page=True)
        browser.close()

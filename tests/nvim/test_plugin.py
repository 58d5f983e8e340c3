"""The Neovim plugin itself (editors/nvim) in a real headless Neovim 0.11, driven like a user through its socket:
keys typed in insert mode, ghost text from the real model, accepting it; a code action with the scripted model
server; an answer shown once, in one reused split; `:checkhealth cove`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.agent.test_loop import repository
from tests.conftest import ARGPARSE, find_line
from tests.nvim.test_neovim import nvim_binary
from tests.scripted.openai_server import completion, scripted_openai_server

pytestmark = [pytest.mark.model, pytest.mark.nvim]

HERE = Path(__file__).parent
PLUGIN = HERE.parent.parent / "editors" / "nvim"


class Nvim:
    """A headless Neovim with the plugin loaded, listening on a socket; keys and expressions go through it."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.socket, self.env = socket, env

    def send(self, keys: str) -> None:
        self._remote("--remote-send", keys)

    def lua(self, expression: str) -> Any:
        """The JSON-encoded value of a Lua expression."""
        out = self._remote("--remote-expr", f"luaeval('vim.json.encode({{v = {expression}}})')")
        return json.loads(out).get("v") if out.strip().startswith("{") else None

    def wait(self, expression: str, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.lua(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")

    def _remote(self, flag: str, argument: str) -> str:
        done = subprocess.run(
            [nvim_binary(), "--server", str(self.socket), flag, argument],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout


@contextmanager
def neovim(tmp_path: Path, env: dict[str, str], file: Path, auto_approve: bool = False) -> Iterator[Nvim]:
    socket = tmp_path / "nvim.sock"
    env = dict(
        env,
        COVE_PLUGIN_DIR=str(PLUGIN),
        COVE_TEST_CMD=json.dumps([sys.executable, "-m", "cove.cli", "lsp"]),
        COVE_AUTO_APPROVE="1" if auto_approve else "0",
    )
    process = subprocess.Popen(
        [
            nvim_binary(),
            "--headless",
            "--clean",
            "--listen",
            str(socket),
            "-u",
            str(HERE / "plugin_init.lua"),
            str(file),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=file.parent,
    )
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        nvim = Nvim(socket, env)
        nvim.lua('(function() vim.bo.filetype = "python"; return true end)()')
        nvim.wait('(function() local c = require("cove").client(0); return c ~= nil and c.initialized end)()')
        yield nvim
    finally:
        process.kill()
        process.wait(timeout=10)


def test_typing_shows_ghost_text_from_the_model_and_accepting_inserts_it(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    source = project / "argparse_copy.py"
    text = ARGPARSE.read_text()
    line, column = find_line(text, "seen_non_default_actions.add(action)")
    lines = text.split("\n")
    lines[line] = lines[line][: column + len("seen_non_de")]  # the user is typing this line
    source.write_text("\n".join(lines))
    with neovim(tmp_path, agent_env, source) as nvim:
        nvim.lua(f"vim.api.nvim_win_set_cursor(0, {{{line + 1}, {column + len('seen_non_de')}}})")
        nvim.send("af")  # append after the cursor, type one character
        nvim.wait('require("cove.ghost").visible()')
        marks = nvim.lua(
            'vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_create_namespace("cove.ghost"), 0, -1, {details = true})'
        )
        shown = marks[0][3]["virt_text"][0][0]
        assert nvim.lua("vim.api.nvim_get_mode().mode") == "i"
        nvim.send("<M-l>")
        typed = nvim.wait(f"vim.api.nvim_buf_get_lines(0, {line}, {line + 1}, false)[1]")
        cursor = nvim.lua("vim.api.nvim_win_get_cursor(0)")
    assert shown.startswith("ault_actions"), shown
    assert typed == lines[line] + "f" + shown
    assert cursor == [line + 1, len(lines[line]) + 1 + len(shown)]


def test_a_code_action_through_the_plugin_applies_the_agents_edit(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    (root / ".git").mkdir()
    docstring = {
        "path": "calc.py",
        "old_text": "def add(a, b):\n",
        "new_text": 'def add(a, b):\n    """Add a and b."""\n',
    }
    script = [completion("", [("edit_file", json.dumps(docstring))]), completion("Added a docstring.")]
    with scripted_openai_server(script) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        with neovim(tmp_path, env, root / "calc.py", auto_approve=True) as nvim:
            nvim.lua("vim.api.nvim_win_set_cursor(0, {2, 4})")
            nvim.send(":lua require('cove.commands').code_action('Cove: add a docstring')<CR>")
            calc = f"vim.fn.bufnr({json.dumps(str(root / 'calc.py'))})"
            edited = nvim.wait(
                f"(function() local l = vim.api.nvim_buf_get_lines({calc}, 0, -1, false); "
                "return #l == 3 and l or nil end)()"
            )
    assert edited == ["def add(a, b):", '    """Add a and b."""', "    return a - b"]


def test_with_the_default_model_the_docstring_comes_from_it_and_explain_says_what_to_set(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """Nothing configured: `:CoveDocstring` is written by the local model and applied after the review;
    `:CoveExplain` (the agent's) reads as off in its title and, run anyway, says why and what to set."""
    root = repository(tmp_path)
    (root / ".git").mkdir()
    with neovim(tmp_path, agent_env, root / "calc.py", auto_approve=True) as nvim:
        nvim.lua("(function() _G.notes = {}; vim.notify = function(m) table.insert(_G.notes, m) end; return 1 end)()")
        nvim.lua("vim.api.nvim_win_set_cursor(0, {2, 4})")
        nvim.send(":CoveDocstring<CR>")
        calc = f"vim.fn.bufnr({json.dumps(str(root / 'calc.py'))})"
        edited = nvim.wait(
            f"(function() local l = vim.api.nvim_buf_get_lines({calc}, 0, -1, false); "
            "return #l == 3 and l or nil end)()"
        )
        # Back from the review's split, as a user would: the split may open or close after the edit is applied, so
        # go back until calc.py's window has kept the focus a moment (the command acts on the current buffer).
        back = (
            f"(function() vim.fn.win_gotoid(vim.fn.bufwinid({calc})); "
            f'return vim.api.nvim_get_current_buf() == {calc} and require("cove").client(0) ~= nil end)()'
        )
        nvim.wait(back)
        time.sleep(0.5)
        nvim.wait(back)
        nvim.send(":CoveExplain<CR>")
        notes = nvim.wait(
            '(function() for _, n in ipairs(_G.notes) do if n:find("chat template") then return _G.notes end end end)()'
        )
    assert edited[0] == "def add(a, b):" and edited[2] == "    return a - b"
    assert re.fullmatch(r'    """[A-Z].*\."""', edited[1]), edited  # the file has no docstrings: one plain line
    assert any("chat template" in note and "[remote]" in note for note in notes), notes


def test_checkhealth_reports_the_setup_healthy(tmp_path: Path, agent_env: dict[str, str]) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "x.py").write_text("x = 1\n")
    with neovim(tmp_path, agent_env, project / "x.py") as nvim:
        nvim.send(":checkhealth cove<CR>")
        report: str = nvim.wait(
            '(function() local t = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\\n"); '
            'return t:find("OK completions: ") and t or nil end)()'
        )
    assert "ERROR" not in report, report
    assert "OK completions: the local model" in report
    assert "OK cove: cove 0." in report and "OK ghost text: extmarks" in report and "OK Neovim 0.11" in report
    assert "OK answers, plans and diffs: shown by the server (window/showDocument)" in report


def windows_showing(text: str) -> str:
    """A Lua expression: how many windows show a buffer that contains `text` (no single quotes in it)."""
    return (
        "(function() local n = 0; for _, w in ipairs(vim.api.nvim_list_wins()) do "
        'local t = table.concat(vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false), "\\n"); '
        f"if t:find({json.dumps(text)}, 1, true) then n = n + 1 end end; return n end)()"
    )


def settled(nvim: Nvim) -> None:
    """Wait until no request to the server is pending (the command's reply has been handled)."""
    nvim.wait(
        '(function() local c = vim.lsp.get_clients({name = "cove"})[1]; '
        'for _, r in pairs(c.requests) do if r.type == "pending" then return false end end; return true end)()'
    )


def test_an_answer_to_cove_ask_is_shown_once_in_a_split(tmp_path: Path, agent_env: dict[str, str]) -> None:
    root = repository(tmp_path)
    (root / ".git").mkdir()
    answer = "add returns a minus b: it subtracts."
    with scripted_openai_server([completion(answer)]) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        with neovim(tmp_path, env, root / "calc.py") as nvim:
            nvim.send(":CoveAsk what does add do?<CR>")
            nvim.wait(windows_showing(answer))
            settled(nvim)
            showing = nvim.lua(windows_showing(answer))
            windows = nvim.lua("#vim.api.nvim_list_wins()")
            current = nvim.lua("vim.api.nvim_buf_get_name(0)")
    assert showing == 1
    assert windows == 2
    assert current == str(root / "calc.py")  # the answer opens beside the code; the cursor stays in the code


def test_a_new_answer_replaces_the_last_in_the_same_split_and_q_closes_it(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    root = repository(tmp_path)
    (root / ".git").mkdir()
    first, second = "add subtracts b from a.", "add returns a - b, not a + b."
    with scripted_openai_server([completion(first), completion(second)]) as server:
        env = dict(agent_env, COVE_REMOTE_BASE_URL=server.url, COVE_REMOTE_MODEL="scripted")
        with neovim(tmp_path, env, root / "calc.py") as nvim:
            for answer in (first, second):  # the same question: the server rewrites the same file
                nvim.send(":CoveAsk what does add do?<CR>")
                nvim.wait(windows_showing(answer))
                settled(nvim)
            shown = nvim.lua(f"{{{windows_showing(first)}, {windows_showing(second)}, #vim.api.nvim_list_wins()}}")
            nvim.lua("vim.api.nvim_set_current_win(vim.api.nvim_list_wins()[2])")
            filetype = nvim.lua("vim.bo.filetype")
            nvim.send("q")
            left = nvim.wait("(function() local w = vim.api.nvim_list_wins(); return #w == 1 and #w or nil end)()")
            current = nvim.lua("vim.api.nvim_buf_get_name(0)")
    assert shown == [0, 1, 2]
    assert filetype == "markdown"
    assert left == 1 and current == str(root / "calc.py")


def cove_status(nvim: Nvim) -> Any:
    """The server's `cove.status` result, asked through the plugin's client."""
    return nvim.lua(
        'vim.lsp.get_clients({name = "cove"})[1]:request_sync("workspace/executeCommand", '
        '{command = "cove.status", arguments = {}}, 10000).result'
    )


def cursors_received(nvim: Nvim) -> int:
    """How many `cove/cursor` notifications the server has received (`warm.requested` in `cove.status`)."""
    requested: int = cove_status(nvim)["warm"]["requested"]
    return requested


# Records the `cove/cursor` notifications the plugin sends (in _G.cursors), and still sends them.
RECORD_CURSORS = (
    '(function() local c = require("cove").client(0); local notify = c.notify; _G.cursors = {}; '
    "c.notify = function(self, method, params) "
    'if method == "cove/cursor" then table.insert(_G.cursors, params) end; return notify(self, method, params) end; '
    "return true end)()"
)


def wait_for_count(nvim: Nvim, count: int) -> None:
    deadline = time.monotonic() + 30
    while cursors_received(nvim) < count:
        assert time.monotonic() < deadline, f"the server did not receive {count} cove/cursor notifications"
        time.sleep(0.1)


def test_the_cursor_resting_tells_the_server_where_it_is(tmp_path: Path, agent_env: dict[str, str]) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    source = project / "my module.py"  # a space: the URI is percent-encoded, as in didOpen
    line = 'name = "héllo"; add(1, 2)'  # a character of two UTF-8 bytes and one UTF-16 unit before the cursor
    source.write_text(f"def add(a, b):\n    return a + b\n\n\n{line}\n")
    with neovim(tmp_path, agent_env, source) as nvim:
        wait_for_count(nvim, 1)  # once the server attached: where the file opened
        nvim.lua(RECORD_CURSORS)
        encoding = nvim.lua('require("cove").client(0).offset_encoding')
        uri = nvim.lua("vim.uri_from_bufnr(0)")
        before = cursors_received(nvim)

        nvim.send("5G$")  # moves in a row: one notification once the cursor rests
        wait_for_count(nvim, before + 1)
        time.sleep(0.6)  # three debounce periods: a second notification would have gone out by now
        moved = nvim.lua("_G.cursors")
        after_move = cursors_received(nvim)

        nvim.send(":enew<CR>")  # a buffer Cove is not attached to: nothing goes out
        time.sleep(0.6)
        after_scratch = nvim.lua("#_G.cursors")
        nvim.send(":buffer 1<CR>")  # back in the file: BufEnter tells the server again
        wait_for_count(nvim, before + 2)
        nvim.lua('(function() vim.api.nvim_exec_autocmds("FocusGained", {}); return true end)()')
        wait_for_count(nvim, before + 3)
        sent = nvim.lua("_G.cursors")
    character = len(line) - 1 if encoding != "utf-8" else len(line.encode()) - 1
    assert "my%20module.py" in uri
    assert moved == [{"textDocument": {"uri": uri}, "position": {"line": 4, "character": character}}]
    assert after_move == before + 1
    assert after_scratch == 1
    assert sent[1:] == moved * 2


def test_checkhealth_says_completions_fell_back_when_a_server_is_skipped(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: the server's connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(
        agent_env,
        COVE_ROUTING_COMPLETE='["remote", "local"]',
        COVE_REMOTE_BASE_URL=f"http://127.0.0.1:{port}/v1",
        COVE_REMOTE_MODEL="nobody",
    )
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "x.py").write_text("def add(a, b):\n    return a\n")
    with neovim(tmp_path, env, project / "x.py") as nvim:
        nvim.lua("vim.api.nvim_win_set_cursor(0, {2, 12})")
        nvim.lua('(function() require("cove.ghost").trigger(); return true end)()')  # remote fails, local answers
        deadline = time.monotonic() + 90
        while not any(t["state"] == "skipped" for t in cove_status(nvim)["completions"]["targets"]):
            assert time.monotonic() < deadline, cove_status(nvim)
            time.sleep(0.2)
        nvim.send(":checkhealth cove<CR>")
        report: str = nvim.wait(
            '(function() local t = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\\n"); '
            'return t:find("cursor places") and t or nil end)()'
        )
    assert "ERROR" not in report, report
    assert "OK completions: the local model" in report, report
    assert re.search(rf"WARNING completions: fell back: \S+ is skipped: .*127\.0\.0\.1:{port}", report), report
    assert "`cove doctor` checks the servers of [routing] complete" in report
    assert re.search(r"cursor places \(cove/cursor\): \d+ received", report), report


# Records the `cove/diagnostics` notifications the plugin sends (in _G.problems), and still sends them.
RECORD_PROBLEMS = (
    '(function() local c = require("cove").client(0); local notify = c.notify; _G.problems = {}; '
    "c.notify = function(self, method, params) "
    'if method == "cove/diagnostics" then table.insert(_G.problems, params) end; return notify(self, method, params) '
    "end; return true end)()"
)


def test_the_buffers_problems_are_sent_once_they_settle(tmp_path: Path, agent_env: dict[str, str]) -> None:
    """A linter's diagnostics (any namespace) reach the server as `cove/diagnostics` in LSP's shape: a burst of
    changes is one notification, a buffer Cove does not serve sends nothing."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    source = project / "my calc.py"
    source.write_text("def add(a, b):\n    return a - b\n")
    set_problems = (
        '(function() local ns = vim.api.nvim_create_namespace("lint"); vim.diagnostic.set(ns, 0, {{lnum = 1, '
        'col = 11, end_col = 12, message = "%s", severity = vim.diagnostic.severity.ERROR, source = "lint"}}); '
        "return true end)()"
    )
    with neovim(tmp_path, agent_env, source) as nvim:
        nvim.wait('require("cove").client(0) and require("cove").client(0).initialized')
        nvim.lua(RECORD_PROBLEMS)
        nvim.lua(set_problems % "first")
        nvim.lua(set_problems % "wrong operator")  # still changing: only this one goes out
        sent = nvim.wait("#_G.problems > 0 and _G.problems or nil", timeout=30)
        time.sleep(1.2)  # two debounce periods: a second notification would have gone out by now
        after_burst = nvim.lua("#_G.problems")
        uri = nvim.lua("vim.uri_from_bufnr(0)")
        nvim.send(":enew<CR>")
        nvim.lua(set_problems % "not served")  # a scratch buffer: nothing goes out
        time.sleep(1.2)
        after_scratch = nvim.lua("#_G.problems")
    assert "my%20calc.py" in uri
    assert after_burst == 1 and after_scratch == 1
    [problem] = sent[0]["diagnostics"]
    assert sent[0]["textDocument"] == {"uri": uri}
    assert problem["message"] == "wrong operator" and problem["severity"] == 1 and problem["source"] == "lint"
    assert problem["range"]["start"] == {"line": 1, "character": 11}


def show_context(nvim: Nvim, uri: str, line: int, character: int) -> Any:
    """`cove.showContext` at a position: the workspace context a completion there gets."""
    arguments = f'{{"{uri}", {{line = {line}, character = {character}}}}}'
    return nvim.lua(
        'vim.lsp.get_clients({name = "cove"})[1]:request_sync("workspace/executeCommand", '
        f'{{command = "cove.showContext", arguments = {arguments}}}, 10000).result'
    )


def test_yanked_lines_reach_the_context_of_a_file_that_uses_their_names(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """`yy` in one file, then a completion in another whose code uses the yanked function: the server's context
    there holds the yanked lines (the plugin sent `cove/yanked` on TextYankPost)."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    retry = project / "retry.py"
    retry.write_text(
        '"""Retrying."""\n\n\ndef backoff_delays(base: float, attempts: int) -> list[float]:\n'
        '    """Delays between attempts."""\n    return [base * 2**n for n in range(attempts)]\n'
    )
    client = project / "client.py"
    client.write_text("import time\n\n\ndef fetch(session, url):\n    for delay in backoff_delays(0.5, 4):\n        \n")
    with neovim(tmp_path, agent_env, retry) as nvim:
        nvim.send("4G3yy")
        nvim.send(f":edit {client}<CR>")
        nvim.lua('(function() vim.bo.filetype = "python"; return true end)()')
        nvim.wait('(function() local c = require("cove").client(0); return c ~= nil end)()')
        uri = nvim.lua("vim.uri_from_bufnr(0)")
        deadline = time.monotonic() + 30
        while "(yanked)" not in (shown := show_context(nvim, uri, 5, 8))["context"]:
            assert time.monotonic() < deadline, shown
            time.sleep(0.2)
        nvim.send("6G$:CoveContext<CR>")  # the same, in Cove's split; the cursor stays in the code
        split = nvim.wait(
            "(function() for _, w in ipairs(vim.api.nvim_tabpage_list_wins(0)) do"
            " local b = vim.api.nvim_win_get_buf(w);"
            ' if vim.b[b].cove_document == "cove://context" then'
            ' return table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), "\\n") end end end)()',
            timeout=30,
        )
        current = nvim.lua("vim.api.nvim_buf_get_name(0)")
    assert "# retry.py:4 (yanked)" in split and current == str(client)
    assert "# retry.py:4 (yanked)\ndef backoff_delays(base: float, attempts: int) -> list[float]:" in shown["context"]


def test_a_suggestion_ready_notification_asks_again_in_its_buffer_only(
    tmp_path: Path, agent_env: dict[str, str]
) -> None:
    """`cove/suggestionReady` (the server's word that a suggestion shown early is whole) reaches the plugin's handler,
    which asks for the suggestion again at the cursor, in insert mode in that buffer only."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    source = project / "greet.py"
    source.write_text("import logging\n\nlogger = logging.getLogger(__name__)\n\n\ndef greet(name):\n    lo\n")
    with neovim(tmp_path, agent_env, source) as nvim:
        nvim.lua(
            '(function() local c = require("cove").client(0); local request = c.request; _G.asked = 0; '
            "c.request = function(self, method, ...) "
            'if method == "textDocument/inlineCompletion" then _G.asked = _G.asked + 1 end; '
            "return request(self, method, ...) end; return true end)()"
        )
        nvim.lua("vim.api.nvim_win_set_cursor(0, {7, 6})")
        nvim.send("a")  # insert mode after "lo", nothing typed
        nvim.wait('vim.api.nvim_get_mode().mode == "i"')
        uri = nvim.lua("vim.uri_from_bufnr(0)")
        handler = 'require("cove").client(0).handlers["cove/suggestionReady"]'
        nvim.lua(
            f'(function() {handler}(nil, {{textDocument = {{uri = "file:///elsewhere.py"}}}}, {{}}); return 1 end)()'
        )
        assert nvim.lua("_G.asked") == 0, "another buffer's suggestion: nothing asked"
        nvim.lua(f"(function() {handler}(nil, {{textDocument = {{uri = {json.dumps(uri)}}}}}, {{}}); return 1 end)()")
        nvim.wait("_G.asked == 1")
        nvim.wait('require("cove.ghost").visible()')

"""The prompt llama.cpp's own server builds for `POST /infill`, recorded on the tiny FIM model (Qwen2.5-Coder's
tokens): the reference layout that Cove's fill-in-the-middle prompt must match.

For a request {input_prefix: P, input_suffix: S, input_extra: [{filename: F1, text: T1}, {filename: F2, text: T2}]}
llama-server (tools/server/server-common.cpp, `format_prompt_infill`) evaluates exactly these tokens, each text piece
tokenized on its own, as plain text (special-token names in it stay text), and no BOS (Qwen adds none):

    <|repo_name|> "myproject\\n"
    <|file_sep|> "F1\\n" T1
    <|file_sep|> "F2\\n" T2
    <|file_sep|> "filename\\n"
    <|fim_prefix|> P <|fim_suffix|> S <|fim_middle|>

- The repository name is always the literal "myproject" and the current file always the literal "filename"; the
  repository line and the closing file line are there even without input_extra. A chunk without a filename is "tmp".
- The request's optional `prompt` is appended right after P, before <|fim_suffix|>.
- Everything before <|fim_prefix|> is cut from the front to n_ctx(slot) - n_batch - 2 * n_predict tokens; P keeps its
  last 3/4 * n_batch tokens and S its first n_batch/4 - 2 - len(prompt) tokens. With --spm-infill the order is
  <|fim_suffix|> S <|fim_prefix|> P <|fim_middle|> (after the same extra context).
- A model with a BOS to add gets it just before <|fim_prefix|>, after the extra context; without <|repo_name|> the
  repository line goes, and without <|file_sep|> each chunk is preceded by "\\n\\n--- snippet ---\\n\\n" instead of
  a file line, and no closing file line is written.
- The answer's `prompt` field is that sequence rendered with its special tokens; `tokens_evaluated` is its length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fim_model import special_token_ids
from tests.llama_server import LlamaServer, llama_server

ID = special_token_ids()
PREFIX = "def add(a, b):\n    return "
SUFFIX = "\n\nprint(add(1, 2))\n"
EXTRA = [{"filename": "util.py", "text": "import os\n"}, {"filename": "b.py", "text": "x = 1\n"}]


@pytest.fixture(scope="module")
def server(fim_model: Path) -> Iterator[LlamaServer]:
    with llama_server(fim_model) as running:
        yield running


def tokenize(server: LlamaServer, text: str, special: bool = False) -> list[int]:
    """Tokens of `text` as llama-server tokenizes it (no BOS; special-token names parsed only with `special`)."""
    reply = httpx.post(f"{server.root}/tokenize", json={"content": text, "parse_special": special}, timeout=30)
    reply.raise_for_status()
    tokens: list[int] = reply.json()["tokens"]
    return tokens


@dataclass(frozen=True)
class InfillAnswer:
    """The fields of an /infill answer that these tests read."""

    prompt: str
    tokens_evaluated: int
    tokens_predicted: int


def infill(server: LlamaServer, **fields: object) -> InfillAnswer:
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 4, "temperature": 0, "cache_prompt": True}
    reply = httpx.post(f"{server.root}/infill", json={**body, **fields}, timeout=60)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    return InfillAnswer(str(answer["prompt"]), int(answer["tokens_evaluated"]), int(answer["tokens_predicted"]))


def test_infill_evaluates_the_repo_level_fim_layout(server: LlamaServer) -> None:
    answer = infill(server, input_extra=EXTRA)
    assert 1 <= answer.tokens_predicted <= 4, "it generates (random weights: any tokens)"
    rep, sep, pre, suf, mid = (
        ID[t] for t in ("<|repo_name|>", "<|file_sep|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
    )

    def text(piece: str) -> list[int]:
        return tokenize(server, piece)

    expected = [
        *[rep, *text("myproject\n")],
        *[sep, *text("util.py\n"), *text("import os\n")],
        *[sep, *text("b.py\n"), *text("x = 1\n")],
        *[sep, *text("filename\n")],
        *[pre, *text(PREFIX), suf, *text(SUFFIX), mid],
    ]
    assert answer.prompt == (
        "<|repo_name|>myproject\n"
        "<|file_sep|>util.py\nimport os\n"
        "<|file_sep|>b.py\nx = 1\n"
        "<|file_sep|>filename\n"
        f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"
    )
    assert answer.tokens_evaluated == len(expected)
    # Every text piece is bounded by control tokens here, so tokenizing the rendered prompt gives the same tokens.
    assert tokenize(server, answer.prompt, special=True) == expected


def test_without_extra_context_the_repository_and_file_lines_stay(server: LlamaServer) -> None:
    answer = infill(server)
    assert answer.prompt == (
        f"<|repo_name|>myproject\n<|file_sep|>filename\n<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"
    )


def test_the_request_prompt_follows_the_prefix(server: LlamaServer) -> None:
    answer = infill(server, prompt="a + b", input_extra=[{"text": "y = 2\n"}])
    assert answer.prompt == (
        "<|repo_name|>myproject\n<|file_sep|>tmp\ny = 2\n<|file_sep|>filename\n"
        f"<|fim_prefix|>{PREFIX}a + b<|fim_suffix|>{SUFFIX}<|fim_middle|>"
    )


def test_special_token_names_in_the_code_stay_text(server: LlamaServer) -> None:
    code = "s = '<|file_sep|>'\n"
    as_text = tokenize(server, code)
    assert ID["<|file_sep|>"] not in as_text
    with_code = infill(server, input_prefix=code, input_suffix="")
    without = infill(server, input_prefix="", input_suffix="")
    assert with_code.tokens_evaluated == without.tokens_evaluated + len(as_text)

"""What llama.cpp makes of the tiny FIM model (tests/fim_model.py): the facts Cove's fill-in-the-middle prompts
build on, checked against llama.cpp itself, through its C API and through Cove's `LocalModel`.

Qwen2.5-Coder's GGUFs name no FIM token by key; llama.cpp finds them by their text when it loads the vocabulary
(src/llama-vocab.cpp), and makes <|fim_pad|>, <|repo_name|> and <|file_sep|> end generation besides <|endoftext|>
and <|im_end|>. No BOS is added: the prompt starts with whatever the caller puts first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import pytest

from cove.config import ModelConfig
from cove.inference.model.local_model import LocalModel
from tests.fim_model import special_token_ids, vocabulary, write_fim_model

TOKENS = vocabulary()[0]
ID = special_token_ids()

CODE = 'def add(self, value):\n    """Add é → ∑ to the list."""\n    self.items.append(value)\n    return None\n'


@pytest.fixture(scope="module")
def vocab(fim_model: Path) -> Iterator[Any]:
    """The model's vocabulary through llama.cpp's C API (the model is freed afterwards)."""
    params = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(str(fim_model).encode(), params)
    assert model, "llama.cpp loads the tiny FIM model"
    yield llama_cpp.llama_model_get_vocab(model)
    llama_cpp.llama_model_free(model)


@pytest.fixture(scope="module")
def local(fim_model: Path) -> Iterator[LocalModel]:
    model = LocalModel(fim_model, ModelConfig(n_ctx=1024, n_threads=1, n_batch=64))
    yield model
    model.close()


def tokenize(vocab: Any, text: str, special: bool) -> list[int]:
    data = text.encode()
    buffer = (llama_cpp.llama_token * (len(data) + 8))()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buffer, len(buffer), False, special)
    assert n >= 0
    return list(buffer[:n])


def test_llama_cpp_finds_the_fim_tokens_by_their_text(vocab: Any) -> None:
    found = {
        "<|fim_prefix|>": llama_cpp.llama_vocab_fim_pre(vocab),
        "<|fim_suffix|>": llama_cpp.llama_vocab_fim_suf(vocab),
        "<|fim_middle|>": llama_cpp.llama_vocab_fim_mid(vocab),
        "<|fim_pad|>": llama_cpp.llama_vocab_fim_pad(vocab),
        "<|repo_name|>": llama_cpp.llama_vocab_fim_rep(vocab),
        "<|file_sep|>": llama_cpp.llama_vocab_fim_sep(vocab),
    }
    assert found == {text: ID[text] for text in found}
    for text, token in ID.items():
        assert llama_cpp.llama_vocab_get_text(vocab, token) == text.encode()
        assert llama_cpp.llama_vocab_is_control(vocab, token), f"{text} is a control token"
        assert tokenize(vocab, text, special=True) == [token], f"{text} is one token when specials are parsed"


def test_begin_end_and_the_tokens_that_end_generation(vocab: Any) -> None:
    assert llama_cpp.llama_vocab_n_tokens(vocab) == len(TOKENS)
    assert llama_cpp.llama_vocab_bos(vocab) == ID["<|endoftext|>"]
    assert llama_cpp.llama_vocab_eos(vocab) == ID["<|endoftext|>"]
    assert llama_cpp.llama_vocab_eot(vocab) == ID["<|endoftext|>"]
    assert not llama_cpp.llama_vocab_get_add_bos(vocab), "Qwen adds no BOS"
    assert not llama_cpp.llama_vocab_get_add_eos(vocab)
    ending = {token for token in range(len(TOKENS)) if llama_cpp.llama_vocab_is_eog(vocab, token)}
    assert ending == {ID[t] for t in ("<|endoftext|>", "<|im_end|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>")}


def test_code_round_trips_in_multi_byte_tokens(vocab: Any, local: LocalModel) -> None:
    tokens = tokenize(vocab, CODE, special=False)
    assert tokens == local.tokenize(CODE)
    assert local.detokenize(tokens) == CODE
    assert len(tokens) < len(CODE.encode()) / 2, "merges make common code words single tokens"
    for word in ("def", " return", " self", "   ", "():\n"):
        assert len(local.tokenize(word)) == 1, f"{word!r} is one token"
    # Plain text never turns into a control token: a file that mentions <|file_sep|> cannot end the prompt's file.
    assert ID["<|file_sep|>"] not in local.tokenize("x = '<|file_sep|>'")


def test_local_model_reports_the_fim_tokens(local: LocalModel) -> None:
    assert local.fim is not None
    assert (local.fim.prefix, local.fim.suffix, local.fim.middle) == (
        ID["<|fim_prefix|>"],
        ID["<|fim_suffix|>"],
        ID["<|fim_middle|>"],
    )
    assert local.bos == ID["<|endoftext|>"]
    assert local.is_end(ID["<|endoftext|>"]) and local.is_end(ID["<|file_sep|>"])
    assert not local.is_end(ID["<|fim_middle|>"]) and not local.is_end(local.tokenize("def")[0])
    assert local.piece(ID["<|fim_prefix|>"]) == b"", "control tokens have no text"


def test_local_model_generates_after_a_fim_prompt(local: LocalModel) -> None:
    fim = local.fim
    assert fim is not None
    prompt = [fim.prefix, *local.tokenize(CODE[:40]), fim.suffix, *local.tokenize(CODE[40:]), fim.middle]
    local.clear()
    assert local.prefill(prompt) == 0
    generated = []
    for _ in range(16):
        token = local.greedy()
        generated.append(token)
        if local.is_end(token):
            break
        local.decode([token])
    assert all(0 <= token < len(TOKENS) for token in generated)
    assert local.tokens[: len(prompt)] == prompt


def test_the_model_is_written_the_same_every_time(fim_model: Path, tmp_path: Path) -> None:
    again = write_fim_model(tmp_path / "again.gguf")
    assert again.read_bytes() == fim_model.read_bytes()
    assert fim_model.stat().st_size < 2_000_000

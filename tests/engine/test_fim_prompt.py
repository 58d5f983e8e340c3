"""Cove's fill-in-the-middle prompt on a real GGUF with FIM tokens (the tiny Qwen2.5-Coder-shaped model the tests
write, tests/fim_model.py), evaluated by real llama.cpp: the exact tokens for a prefix/suffix pair, in the layout
llama-server uses for `/infill` (tests/engine/test_llama_server_infill.py), the order `[completion] fim_order` picks,
and how much of the prompt each order keeps in the KV cache while the user types."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from cove.config import CompletionConfig, ModelConfig
from cove.inference.completion.fim import choose_order
from cove.inference.completion.llama_server_completions import LlamaServerCompletions
from cove.inference.completion.local_backend import LocalBackend
from cove.inference.completion.prompt_window import build_window
from cove.inference.model.local_model import LocalModel
from cove.inference.model.vocabulary import FimTokens
from cove.protocol.jobs import CompletionMode, ContextFile, GenerationJob, StopRule
from tests.fim_model import special_token_ids
from tests.llama_server import llama_server

ID = special_token_ids()
DOCUMENT = "file:///work/shop/cart%20items.py"
TEXT = "import os\n\n\ndef total(items):\n    return sum(item.price for item in items)\n\n\nprint(total([]))\n"
CONTEXT = "# util.py\ndef price(x): ...\n"


@pytest.fixture(scope="module")
def model(fim_model: Path) -> LocalModel:
    return LocalModel(fim_model, ModelConfig(n_ctx=2048))


def job_at(offset: int, context: str = CONTEXT, text: str = TEXT) -> GenerationJob:
    window = build_window(text, offset, 0, 3000, 600)
    rule = StopRule(CompletionMode.LINE, window.line_prefix, window.line_suffix, 8)
    return GenerationJob(DOCUMENT, window, CompletionMode.LINE, rule, 4, 5.0, context=context)


def prompt_of(model: LocalModel, job: GenerationJob, fim_order: str = "auto") -> list[int]:
    backend = LocalBackend(model, CompletionConfig(fim_order=fim_order))  # type: ignore[arg-type]
    prompt, heal = backend._prompt(job.window, job.max_new, job.context, job.document)
    assert heal == b"", "a FIM prompt holds nothing back for token healing"
    return prompt


def test_the_exact_tokens_of_a_fim_prompt(model: LocalModel) -> None:
    cursor = TEXT.index("sum(")
    job = job_at(cursor)
    t = model.tokenize
    repository = [ID["<|repo_name|>"], *t("shop\n"), ID["<|file_sep|>"], *t("context\n"), *t(CONTEXT)]
    repository += [ID["<|file_sep|>"], *t("cart items.py\n")]
    prefix, suffix = t(TEXT[:cursor]), t(TEXT[cursor:])
    # Qwen2.5-Coder: no BOS, trained prefix-first; the repository format because the model has its tokens.
    assert model.fim is not None and model.fim.prefix_text == "<|fim_prefix|>"
    assert choose_order("auto", model.fim, model.architecture) == "psm" and not model.add_bos
    psm = [*repository, ID["<|fim_prefix|>"], *prefix, ID["<|fim_suffix|>"], *suffix, ID["<|fim_middle|>"]]
    assert prompt_of(model, job) == psm
    spm = [*repository, ID["<|fim_suffix|>"], *suffix, ID["<|fim_prefix|>"], *prefix, ID["<|fim_middle|>"]]
    assert prompt_of(model, job, "spm") == spm
    assert prompt_of(model, job, "psm") == psm


def test_the_order_for_each_family() -> None:
    def auto(prefix_text: str, architecture: str) -> str:
        return choose_order("auto", FimTokens(1, 2, 3, prefix_text=prefix_text), architecture)

    assert auto("<|fim_prefix|>", "qwen2") == "psm"  # Qwen2.5-Coder
    deepseek = "<\uff5cfim\u2581begin\uff5c>"  # with fullwidth bars
    assert auto(deepseek, "llama") == auto(deepseek, "deepseek2") == "psm"  # DeepSeek-Coder
    assert auto("<fim_prefix>", "starcoder2") == auto("<fim_prefix>", "starcoder") == "spm"  # StarCoder
    assert auto("▁<PRE>", "llama") == "spm"  # Code Llama
    assert auto("<|fim_prefix|>", "gemma") == "spm"  # CodeGemma
    qwen = FimTokens(1, 2, 3, prefix_text="<|fim_prefix|>")
    assert choose_order("spm", qwen, "qwen2") == "spm" and choose_order("psm", qwen, "gemma") == "psm"


def reuse_while_typing(model: LocalModel, fim_order: str) -> float:
    """Share of prompt tokens the KV cache held over keystrokes typed at a place in the middle of the file."""
    backend = LocalBackend(model, CompletionConfig(fim_order=fim_order))  # type: ignore[arg-type]
    model.clear()
    cursor = TEXT.index("\n\n\nprint")
    typed = "\n    # the sum of the prices\n"
    reused = total = 0
    for count in range(len(typed)):
        text = TEXT[:cursor] + typed[:count] + TEXT[cursor:]
        generated = backend.generate(job_at(cursor + count, text=text), lambda: False, None)
        if count:  # the first keystroke at the place is cold whatever the order
            reused += generated.reused_tokens
            total += generated.prompt_tokens
    return reused / total


def test_suffix_first_keeps_the_cache_while_typing(model: LocalModel) -> None:
    spm, psm = reuse_while_typing(model, "spm"), reuse_while_typing(model, "psm")
    assert spm > 0.95, spm  # only the tokens at the cursor are evaluated again
    assert psm < spm - 0.1, (psm, spm)  # every keystroke re-evaluates the whole suffix


def test_llama_server_gets_the_same_pieces(fim_model: Path, model: LocalModel) -> None:
    cursor = TEXT.index("sum(")
    job = job_at(cursor)
    backend = LlamaServerCompletions("http://127.0.0.1:9")
    body = {**backend.body(job, slot=0), "stream": False, "n_predict": 1}
    with llama_server(fim_model) as server:
        reply = httpx.post(f"{server.root}/infill", json=body, timeout=60).json()
    # The server's own names for the repository and the file; everything else is what Cove evaluates locally.
    expected = (
        f"<|repo_name|>myproject\n<|file_sep|>context\n{CONTEXT}<|file_sep|>filename\n"
        f"<|fim_prefix|>{TEXT[:cursor]}<|fim_suffix|>{TEXT[cursor:]}<|fim_middle|>"
    )
    assert reply["prompt"] == expected
    local = prompt_of(model, job)
    fim_part = [ID["<|fim_prefix|>"], *model.tokenize(TEXT[:cursor]), ID["<|fim_suffix|>"]]
    fim_part += [*model.tokenize(TEXT[cursor:]), ID["<|fim_middle|>"]]
    assert local[local.index(ID["<|fim_prefix|>"]) :] == fim_part
    assert local[: local.index(ID["<|file_sep|>"], 1) + 1] == [
        ID["<|repo_name|>"],
        *model.tokenize("shop\n"),
        ID["<|file_sep|>"],
    ]


def test_a_fim_prompt_gives_way_to_the_window_first(model: LocalModel) -> None:
    long_context = "# notes\n" + "x = 1\n" * 2000
    job = dataclasses.replace(job_at(TEXT.index("sum(")), context=long_context)
    prompt = prompt_of(model, job)
    assert len(prompt) <= model.n_ctx - job.max_new
    assert prompt[-1] == ID["<|fim_middle|>"] and ID["<|fim_suffix|>"] in prompt  # the window is whole


FILES = (
    ContextFile("shop/util.py", "def price(x): ..."),
    ContextFile("shop/cart.py", "class Cart:\n    items: list\n"),
)


def test_the_repository_format_gives_each_file_of_the_context_its_chunk(fim_model: Path, model: LocalModel) -> None:
    """The workspace context by file (imported definitions, seen code, ...) goes as `<|file_sep|>name` chunks, as
    Qwen2.5-Coder was trained for cross-file context; llama-server gets the same files as `input_extra`."""
    cursor = TEXT.index("sum(")
    job = dataclasses.replace(job_at(cursor), context_files=FILES)
    t = model.tokenize
    repository = [ID["<|repo_name|>"], *t("shop\n")]
    repository += [ID["<|file_sep|>"], *t("shop/util.py\n"), *t("def price(x): ...\n")]
    repository += [ID["<|file_sep|>"], *t("shop/cart.py\n"), *t("class Cart:\n    items: list\n")]
    repository += [ID["<|file_sep|>"], *t("cart items.py\n")]
    prefix, suffix = t(TEXT[:cursor]), t(TEXT[cursor:])
    backend = LocalBackend(model, CompletionConfig())
    prompt, _ = backend._prompt(job.window, job.max_new, job.context, job.document, job.context_files)
    assert prompt == [*repository, ID["<|fim_prefix|>"], *prefix, ID["<|fim_suffix|>"], *suffix, ID["<|fim_middle|>"]]
    body = {**LlamaServerCompletions("http://127.0.0.1:9").body(job, slot=0), "stream": False, "n_predict": 1}
    assert body["input_extra"] == [{"filename": f.name, "text": f.text} for f in FILES]
    with llama_server(fim_model) as server:
        reply = httpx.post(f"{server.root}/infill", json=body, timeout=60).json()
    assert reply["prompt"].startswith(
        "<|repo_name|>myproject\n<|file_sep|>shop/util.py\ndef price(x): ...<|file_sep|>shop/cart.py\nclass Cart:"
    )

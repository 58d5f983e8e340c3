"""Fill-in-the-middle prompts for models trained with FIM tokens, laid out as llama.cpp's server lays out `/infill`.

    [BOS]? [<|repo_name|>repo\\n <|file_sep|>chunk name\\n chunk text ... <|file_sep|>file name\\n]
    PSM: <FIM_PRE> prefix <FIM_SUF> suffix <FIM_MID>
    SPM: <FIM_SUF> suffix <FIM_PRE> prefix <FIM_MID>

The repository part is used where the model has `<|repo_name|>` / `<|file_sep|>` tokens (Qwen2.5-Coder), a chunk per
file the workspace context draws on (its imported definitions, the code seen lately, ...: the format those models
were trained on for cross-file context); a model without them gets the workspace context as plain text, commented
blocks, before the FIM part, as llama-server does. The BOS token goes
first only for models whose vocabulary asks for it (Qwen's does not).

Order matters for the cache. The text after the cursor stays the same while the user types, the text before it grows
at its end: suffix-prefix-middle keeps every token up to the cursor from keystroke to keystroke, while
prefix-suffix-middle re-evaluates the whole suffix on every keystroke. Suffix-first is used for the families trained
with it (StarCoder, Code Llama, CodeGemma); the others (Qwen2.5-Coder, DeepSeek-Coder) were trained prefix-first,
and `[completion] fim_order` can force either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from cove.inference.model.vocabulary import FimTokens
from cove.protocol.jobs import ContextFile

FimOrder = Literal["psm", "spm"]

#: FIM prefix tokens of the families trained with suffix-first prompts too: StarCoder, Code Llama. (DeepSeek-Coder,
#: prefix-first, shares Code Llama's architecture but not its tokens.)
SUFFIX_FIRST_PREFIX_TOKENS = frozenset({"<fim_prefix>", "<fim-prefix>", "▁<PRE>", "<PRE>"})
#: Architectures whose `<|fim_prefix|>` models were trained suffix-first too (CodeGemma; Qwen2.5-Coder was not).
SUFFIX_FIRST_ARCHITECTURES = frozenset({"gemma", "gemma2", "gemma3"})


def choose_order(setting: str, fim: FimTokens, architecture: str) -> FimOrder:
    """The FIM order for `[completion] fim_order` ("auto", "psm", "spm"), the model's FIM tokens and architecture."""
    if setting in ("psm", "spm"):
        return setting  # type: ignore[return-value]
    if fim.prefix_text in SUFFIX_FIRST_PREFIX_TOKENS:
        return "spm"
    if fim.prefix_text == "<|fim_prefix|>" and architecture in SUFFIX_FIRST_ARCHITECTURES:
        return "spm"
    return "psm"


def repository_part(
    fim: FimTokens,
    tokenize: Callable[[str], list[int]],
    repo: str,
    file: str,
    context: str,
    files: Sequence[ContextFile] = (),
) -> list[int]:
    """The tokens before the FIM part: the repository, the context as a chunk per file (`files`; without them the
    context text as one chunk), the current file's name."""
    if fim.repo is None or fim.file_sep is None:
        return tokenize(context) if context else []
    tokens = [fim.repo, *tokenize(f"{repo}\n")]
    for piece in files or ([ContextFile("context", context)] if context else []):
        text = piece.text if piece.text.endswith("\n") else piece.text + "\n"
        tokens += [fim.file_sep, *tokenize(f"{piece.name}\n"), *tokenize(text)]
    return [*tokens, fim.file_sep, *tokenize(f"{file}\n")]


def fim_prompt(
    fim: FimTokens,
    order: FimOrder,
    head: Sequence[int],
    prefix: Sequence[int],
    suffix: Sequence[int],
) -> list[int]:
    """`head` (BOS and the repository part), then the FIM part in `order`."""
    if order == "spm":
        return [*head, fim.suffix, *suffix, fim.prefix, *prefix, fim.middle]
    return [*head, fim.prefix, *prefix, fim.suffix, *suffix, fim.middle]

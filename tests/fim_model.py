"""A tiny fill-in-the-middle model written by the tests themselves: Qwen2.5-Coder's architecture and special tokens,
random weights.

No model with FIM tokens ships through PyPI, and the tests download nothing; yet Cove's FIM prompts must be proved
against real llama.cpp reading a real GGUF. This one has the shape llama.cpp sees in a converted Qwen2.5-Coder file:
architecture `qwen2`, a byte-level BPE vocabulary (`gpt2` model, `qwen2` pre-tokenizer) whose merges make common code
words single tokens, and the Qwen special tokens typed as control tokens. Like the files the converter writes, it
names no FIM token by key: llama.cpp finds `<|fim_prefix|>` and the others by their text. Its choices are noise.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import gguf
import numpy as np

#: Qwen2.5-Coder's special tokens in the order of their ids there (151643, 151644, ..., 151664 with gaps).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)

_WORDS = """
def return self import from class if else elif for in not None True False and or is while with as try except raise
pass yield lambda print len range value name key result args kwargs data list dict str int float bool append items get
set add get_values action parser path text line index count error type object init main the to of a an this that file
test assert
"""
#: Words of code that the merges make single tokens, bare and after a space, as the qwen2 pre-tokenizer cuts them.
CODE_WORDS = tuple(_WORDS.split())

#: Pieces the pre-tokenizer keeps whole: punctuation runs (with the newline they swallow) and indentation.
CODE_PIECES = ("():\n", "):\n", "()\n", "(self", "(self,", ".append", " =", " ==", " !=", " +=", "\n\n", ", ", "__")
INDENTS = tuple(" " * n for n in (3, 7, 11, 15))

N_EMBD = 64
N_HEAD = 2
N_HEAD_KV = 1
N_FF = 128
N_LAYER = 2
CONTEXT_LENGTH = 4096
SEED = 20241112


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte-to-character table, in its order: printable bytes map to themselves, the rest to U+0100 onwards."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}


def learn_merges(words: Counter[str]) -> list[tuple[str, str]]:
    """BPE merges learnt on `words` (already in byte-characters) until each word is one token: the most frequent
    pair first, ties broken by the pair's text, so that the list is the same on every run."""
    spelled = {word: list(word) for word in words}
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, symbols in spelled.items():
            for pair in itertools.pairwise(symbols):
                pairs[pair] += words[word]
        if not pairs:
            return merges
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        for symbols in spelled.values():
            i = 0
            while i < len(symbols) - 1:
                if (symbols[i], symbols[i + 1]) == best:
                    symbols[i : i + 2] = [best[0] + best[1]]
                i += 1


def vocabulary() -> tuple[list[str], list[int], list[str]]:
    """Token texts, token types and merges: the 256 byte tokens, the merged ones, then the special tokens."""
    to_char = byte_to_unicode()

    def spell(text: str) -> str:
        return "".join(to_char[b] for b in text.encode("utf-8"))

    corpus = Counter({spell(w): 2 for w in CODE_WORDS}) + Counter({spell(" " + w): 3 for w in CODE_WORDS})
    corpus.update({spell(piece): 1 for piece in (*CODE_PIECES, *INDENTS)})
    merges = learn_merges(corpus)
    tokens = list(to_char.values()) + [a + b for a, b in merges] + list(SPECIAL_TOKENS)
    types = [gguf.TokenType.NORMAL] * (len(tokens) - len(SPECIAL_TOKENS)) + [gguf.TokenType.CONTROL] * len(
        SPECIAL_TOKENS
    )
    return tokens, [int(t) for t in types], [f"{a} {b}" for a, b in merges]


def special_token_ids() -> dict[str, int]:
    """Id of each of `SPECIAL_TOKENS` in the model's vocabulary."""
    tokens = vocabulary()[0]
    return {text: tokens.index(text) for text in SPECIAL_TOKENS}


#: Qwen2.5-Instruct's chat template, short form: what makes a GGUF a chat model for Cove (inference/model/fitness.py).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_fim_model(path: Path, chat: bool = False, size_label: str = "") -> Path:
    """Write the tiny FIM model to `path` (about 0.6 MB, f32) and return `path`. The same bytes on every call.
    `chat`: with a chat template (an instruct model); `size_label`: what its header says of its size."""
    tokens, types, merges = vocabulary()
    n_vocab = len(tokens)
    end_of_text = tokens.index("<|endoftext|>")
    rng = np.random.default_rng(SEED)
    head_dim = N_EMBD // N_HEAD

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny-fim-qwen2" + ("-instruct" if chat else ""))
    if chat:
        writer.add_chat_template(CHAT_TEMPLATE)
    if size_label:
        writer.add_size_label(size_label)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    # As in Qwen2.5-Coder (base): <|endoftext|> begins, ends and pads, and no BOS is added.
    writer.add_bos_token_id(end_of_text)
    writer.add_eos_token_id(end_of_text)
    writer.add_pad_token_id(end_of_text)
    # Named so that llama.cpp need not pick one of <|endoftext|> and <|im_end|> by text, in hash-map order.
    writer.add_eot_token_id(end_of_text)
    writer.add_add_bos_token(False)

    writer.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD))  # [n_vocab, n_embd]; tied output
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    for i in range(N_LAYER):
        block = f"blk.{i}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{block}.attn_q.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{block}.attn_k.weight", weight(N_HEAD_KV * head_dim, N_EMBD))
        writer.add_tensor(f"{block}.attn_v.weight", weight(N_HEAD_KV * head_dim, N_EMBD))
        writer.add_tensor(f"{block}.attn_q.bias", weight(N_EMBD))
        writer.add_tensor(f"{block}.attn_k.bias", weight(N_HEAD_KV * head_dim))
        writer.add_tensor(f"{block}.attn_v.bias", weight(N_HEAD_KV * head_dim))
        writer.add_tensor(f"{block}.attn_output.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(N_EMBD, N_FF))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

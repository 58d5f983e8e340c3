"""KIVI-style KV quantization: every token kept, in 4 or 2 bits.

Keys are quantized per channel (each channel's min and scale over a group of tokens: key outliers live in fixed
channels), values per token (min and scale over a group of channels); the most recent tokens stay in full precision
until a whole group of them is old enough. Codes are packed into bytes, so `nbytes` is what is really held.
"""

from __future__ import annotations

import torch

from cove.inference.research.kv_cache import LayerStore

GROUP = 32
RESIDUAL = 128


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 codes < 2**bits, last dim divisible by 8 // bits -> packed bytes."""
    per = 8 // bits
    grouped = codes.reshape(*codes.shape[:-1], -1, per).to(torch.uint8)
    shifts = torch.arange(per, dtype=torch.uint8) * bits
    return (grouped << shifts).sum(dim=-1, dtype=torch.uint8)


def unpack(packed: torch.Tensor, bits: int) -> torch.Tensor:
    per = 8 // bits
    shifts = torch.arange(per, dtype=torch.uint8) * bits
    codes = (packed[..., None] >> shifts) & ((1 << bits) - 1)
    return codes.reshape(*packed.shape[:-1], -1)


def quantize(x: torch.Tensor, bits: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric quantization with the min and scale taken along `dim`: (packed codes, scale, min)."""
    low = x.amin(dim=dim, keepdim=True)
    scale = ((x.amax(dim=dim, keepdim=True) - low) / ((1 << bits) - 1)).clamp_min(1e-8)
    codes = ((x - low) / scale).round().clamp(0, (1 << bits) - 1).to(torch.uint8)
    return pack(codes, bits), scale.half(), low.half()


def dequantize(packed: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, bits: int) -> torch.Tensor:
    return unpack(packed, bits).float() * scale.float() + low.float()


class KiviStore(LayerStore):
    """Every token, the older ones quantized. `positions` covers every held token (quantized first, oldest first);
    `keys`/`values` hold only the full-precision tail. A subclass that also selects tokens (see
    `kv_policies.quantized_selection`) may drop any of them: a quantized group then keeps its rows' codes and its
    channels' scales."""

    def __init__(self, bits: int, dtype: torch.dtype = torch.float16) -> None:
        super().__init__(dtype)
        self._init_groups(bits)

    def _init_groups(self, bits: int) -> None:
        if bits not in (2, 4):
            raise ValueError("KIVI quantizes to 4 or 2 bits")
        self.bits = bits
        # One entry per quantized group of up to GROUP tokens: (packed codes, scale, min); codes' dim 1 is tokens.
        self.key_groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.value_groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._dequantized: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def quantized_tokens(self) -> int:
        return sum(int(group[0].shape[1]) for group in self.key_groups)

    def append(self, keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> None:
        keys, values = keys.to(self.dtype), values.to(self.dtype)
        tail = self.tokens - self.quantized_tokens
        self.keys = keys if tail == 0 else torch.cat([self.keys, keys], dim=1)
        self.values = values if tail == 0 else torch.cat([self.values, values], dim=1)
        self.positions = torch.cat([self.positions, positions.to(torch.int32)])

    def settle(self) -> None:
        super().settle()  # a selecting subclass trims first
        # The full-precision tail holds the newest tokens; old enough groups get quantized.
        while self.keys.shape[1] > RESIDUAL:
            keys, values = self.keys[:, :GROUP].float(), self.values[:, :GROUP].float()  # [H_kv, G, D]
            self.key_groups.append(quantize(keys, self.bits, dim=1))  # per channel, across the group's tokens
            heads, tokens, dim = values.shape
            per_token = values.reshape(heads, tokens, dim // GROUP, GROUP)
            self.value_groups.append(quantize(per_token, self.bits, dim=3))  # per token, across groups of channels
            self.keys, self.values = self.keys[:, GROUP:], self.values[:, GROUP:]
            self._dequantized = None

    def keep(self, index: torch.Tensor) -> None:
        index = index.sort().values
        quantized = self.quantized_tokens
        offset, key_groups, value_groups = 0, [], []
        for key_group, value_group in zip(self.key_groups, self.value_groups, strict=True):
            size = int(key_group[0].shape[1])
            rows = index[(index >= offset) & (index < offset + size)] - offset
            if rows.shape[0] == size:
                key_groups.append(key_group)
                value_groups.append(value_group)
            elif rows.shape[0]:
                codes, scale, low = key_group  # scale and min are per channel: they stay
                key_groups.append((codes[:, rows], scale, low))
                value_groups.append(tuple(t[:, rows] for t in value_group))  # type: ignore[arg-type]
            offset += size
        kept_quantized = index[index < quantized]
        if self._dequantized is not None and kept_quantized.shape[0] < quantized:
            # What the remaining codes stand for does not change (their groups keep their scales).
            keys, values = self._dequantized
            self._dequantized = keys[:, kept_quantized], values[:, kept_quantized]
        self.key_groups, self.value_groups = key_groups, value_groups
        tail = index[index >= quantized] - quantized
        self.keys, self.values = self.keys[:, tail], self.values[:, tail]
        self.positions = self.positions[index]
        if self.scores.shape[0]:
            self.scores = self.scores[index]
        if self.recent_attention.shape[0]:
            self.recent_attention = self.recent_attention[:, index]

    def _quantized(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._dequantized is None:
            keys = [dequantize(*group, bits=self.bits) for group in self.key_groups]  # [H_kv, G, D] each
            values = [dequantize(*group, bits=self.bits).flatten(2) for group in self.value_groups]
            self._dequantized = torch.cat(keys, dim=1), torch.cat(values, dim=1)
        return self._dequantized

    def view(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not self.key_groups:
            return self.keys, self.values, self.positions.long(), None
        keys, values = self._quantized()  # what the codes stand for (kept so as not to decode them every step)
        return (
            torch.cat([keys, self.keys.float()], dim=1),
            torch.cat([values, self.values.float()], dim=1),
            self.positions.long(),
            None,
        )

    def held_tensors(self) -> list[torch.Tensor]:
        quantized = [t for group in self.key_groups + self.value_groups for t in group]
        return [*super().held_tensors(), *quantized]

    def copy_from(self, other: LayerStore) -> None:
        self.key_groups, self.value_groups, self._dequantized = [], [], None
        super().copy_from(other)


def quantized_bytes_per_token(bits: int, kv_heads: int, head_dim: int) -> float:
    """Bytes a token costs once quantized in a full group: codes, values' per-token scales, its position, and its
    share of the keys' per-channel scales."""
    codes = 2 * kv_heads * head_dim * bits / 8
    value_scales = 2 * 2 * kv_heads * head_dim // GROUP
    key_scales = 2 * 2 * kv_heads * head_dim / GROUP
    return codes + value_scales + 4 + key_scales

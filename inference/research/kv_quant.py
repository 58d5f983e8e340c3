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
    def __init__(self, bits: int, dtype: torch.dtype = torch.float16) -> None:
        super().__init__(dtype)
        if bits not in (2, 4):
            raise ValueError("KIVI quantizes to 4 or 2 bits")
        self.bits = bits
        # One entry per quantized group of GROUP tokens.
        self.key_groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.value_groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.group_positions = torch.empty(0, dtype=torch.int32)

    @property
    def tokens(self) -> int:
        return int(self.group_positions.shape[0] + self.positions.shape[0])

    def settle(self) -> None:
        # The full-precision tail (keys, values, positions) holds the newest tokens; old enough groups get quantized.
        while self.positions.shape[0] > RESIDUAL:
            keys, values = self.keys[:, :GROUP].float(), self.values[:, :GROUP].float()  # [H_kv, G, D]
            self.key_groups.append(quantize(keys, self.bits, dim=1))  # per channel, across the group's tokens
            heads, tokens, dim = values.shape
            per_token = values.reshape(heads, tokens, dim // GROUP, GROUP)
            self.value_groups.append(quantize(per_token, self.bits, dim=3))  # per token, across groups of channels
            self.group_positions = torch.cat([self.group_positions, self.positions[:GROUP]])
            self.keys, self.values, self.positions = (
                self.keys[:, GROUP:],
                self.values[:, GROUP:],
                self.positions[GROUP:],
            )

    def _quantized(self) -> tuple[torch.Tensor, torch.Tensor]:
        keys = [dequantize(*group, bits=self.bits) for group in self.key_groups]  # [H_kv, G, D] each
        values = [dequantize(*group, bits=self.bits).flatten(2) for group in self.value_groups]
        return torch.cat(keys, dim=1), torch.cat(values, dim=1)

    def view(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not self.key_groups:
            return super().view()
        keys, values = self._quantized()
        positions = torch.cat([self.group_positions, self.positions]).long()
        return (
            torch.cat([keys, self.keys.float()], dim=1),
            torch.cat([values, self.values.float()], dim=1),
            positions,
            None,
        )

    def held_tensors(self) -> list[torch.Tensor]:
        quantized = [t for group in self.key_groups + self.value_groups for t in group]
        return [*super().held_tensors(), *quantized, self.group_positions]

    def copy_from(self, other: LayerStore) -> None:
        self.keys, self.values = other.keys.to(self.dtype), other.values.to(self.dtype)
        self.positions = other.positions.clone()
        self.settle()

"""Transformer dimensions and their FLOP counts: presets and custom models.

MFU counts model FLOPs as PaLM does (forward + backward = 3x forward, no recompute); HFU adds
the recomputed forward. The layer FLOPs follow Megatron's count: with ffn = 4h and full
attention it reduces to 72·B·s·l·h²·(1 + s/6h) + 6·B·s·h·V.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    """A decoder-only transformer; kv_heads < heads is grouped-query attention."""

    name: str
    layers: int
    hidden: int
    heads: int
    seq: int
    vocab: int
    ffn: int = 0  # 0: 4 x hidden
    kv_heads: int = 0  # 0: heads
    gated: bool = False  # SwiGLU: three ffn matrices instead of two

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "seq", "vocab"):
            if getattr(self, name) <= 0:
                raise ValueError(f"model {name} must be positive, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not a multiple of heads {self.heads}")

    @property
    def ffn_dim(self) -> int:
        return self.ffn or 4 * self.hidden

    @property
    def kv_dim(self) -> int:
        return (self.kv_heads or self.heads) * (self.hidden // self.heads)

    def layer_gemms(self) -> list[tuple[str, int, int]]:
        """(name, K, N) of each weight matmul of one layer; M is the tokens of a microbatch."""
        h, f = self.hidden, self.ffn_dim
        gemms = [("qkv", h, h + 2 * self.kv_dim), ("proj", h, h), ("fc1", h, f), ("fc2", f, h)]
        if self.gated:
            gemms.append(("gate", h, f))
        return gemms

    @property
    def layer_params(self) -> int:
        return sum(k * n for _, k, n in self.layer_gemms())

    @property
    def params(self) -> int:
        """Weights (embedding counted once): what data parallelism all-reduces."""
        return self.layers * self.layer_params + self.vocab * self.hidden

    def forward_flops_per_token(self) -> dict[str, float]:
        """Forward FLOPs of one token by part: weight matmuls, attention scores, logits."""
        return {
            "gemm": 2.0 * self.layers * self.layer_params,
            "attention": 4.0 * self.layers * self.seq * self.hidden,
            "logits": 2.0 * self.hidden * self.vocab,
        }

    def model_flops_per_token(self) -> float:
        """MFU's numerator per token (PaLM): 3 x forward, nothing recomputed."""
        return 3.0 * sum(self.forward_flops_per_token().values())

    def hardware_flops_per_token(self, recompute: str) -> float:
        """HFU's numerator: model FLOPs plus what recompute runs again (logits never)."""
        fwd = self.forward_flops_per_token()
        extra = {
            "none": 0.0,
            "selective": fwd["attention"],
            "full": fwd["gemm"] + fwd["attention"],
        }[recompute]
        return self.model_flops_per_token() + extra


PRESETS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("gpt3-175b", 96, 12288, 96, 2048, 51200),
        Model("llama3-70b", 80, 8192, 64, 8192, 128256, 28672, 8, True),
        Model("llama3-405b", 126, 16384, 128, 8192, 128256, 53248, 8, True),
        Model("megatron-530b", 105, 20480, 128, 2048, 51200),
        Model("megatron-1t", 128, 25600, 160, 2048, 51200),
    )
}


def preset(name: str) -> Model:
    """A preset by name; the error lists the presets."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown model preset {name!r}; presets: {', '.join(PRESETS)} "
            "(or give --layers --hidden --heads --seq --vocab)"
        ) from None

"""GPT: a decoder-only Transformer language model with a KV cache for generation.

Radford et al. 2018/2019 (GPT, GPT-2); the layout follows nanoGPT (github.com/karpathy/nanoGPT, model.py):

    token ids [B, T] -> token embedding + position (learned, or sinusoidal as in Vaswani et al. 2017 §3.5)
    -> num_layers x pre-norm block:  x = x + attention(norm(x));  x = x + mlp(norm(x))
    -> final norm -> output layer (tied to the token embedding) -> logits [B, T, vocab]

Attention is causal self-attention through `torch.nn.functional.scaled_dot_product_attention`.

**KV cache** (generation): each block keeps the keys and values of the tokens seen so far, preallocated
as [rows, heads, context_length, head_dim]; a new token computes only its own query/key/value and attends
to the cache, so a step costs O(length) instead of re-running the whole prefix (O(length^2) work per
step). When the visible text reaches `context_length` tokens, the context slides: the last
`context_length // 2` tokens are kept and re-encoded (one full pass), then caching resumes. Decoding
without the cache (`use_cache=False`) applies exactly the same sliding rule and recomputes the visible
context at every step, so both give the same tokens; only the speed differs.

**Decode step** (`DecodeStep`): one new token per row after the prefill. A 4 x 128 model does ~0.2 M
multiply-adds per layer per token, so the cost is per-call overhead, not arithmetic; the step is the
forward pass for T = 1 written with as few tensor calls as possible: plain nn.Linear / LayerNorm layers
become direct `F.linear` / `F.layer_norm` calls on their weights (other layers — LoRA, int8 — are
called as modules), the new key/value go into the cache in place, and single-query attention is
`softmax(q k^T / sqrt(d)) v` as two matmuls (SDPA's set-up costs more than the math for one query).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.data.tokenizers import TokenizerSettings
from aigc.models.layers import sinusoidal_embedding
from aigc.models.text.common import LanguageModel
from aigc.registry import register_model

# ---------------------------------------------------------------------------------------------- config


class GPTConfig(TokenizerSettings):
    context_length: int = Field(256, ge=2)  # longest context the model sees (training window length)
    num_layers: int = Field(4, ge=1)  # Transformer blocks
    num_heads: int = Field(4, ge=1)  # attention heads per block
    embedding_dim: int = Field(128, ge=2)  # model width; a multiple of num_heads
    mlp_ratio: int = Field(4, ge=1)  # MLP hidden width = mlp_ratio x embedding_dim
    dropout: float = Field(0.0, ge=0, lt=1)  # on embeddings, attention weights and residual branches
    positions: Literal["learned", "sinusoidal"] = "learned"  # position encoding
    tie_weights: bool = True  # output layer = token embedding matrix
    bias: bool = False  # biases in linear layers and norms (GPT-2 had them; without is a bit faster)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "GPTConfig":
        if self.embedding_dim % self.num_heads:
            raise ValueError(f"embedding_dim ({self.embedding_dim}) must be a multiple of num_heads ({self.num_heads})")
        return self


# -------------------------------------------------------------------------------------------- blocks


def dropout(module: nn.Dropout, x: Tensor) -> Tensor:
    """`module(x)`, skipped when it would do nothing (eval mode or p = 0): generation calls this a dozen times
    per token, and a module call costs more than the tiny matmuls around it."""
    return module(x) if module.training and module.p > 0 else x


class KVCache:
    """Keys and values of one block for `rows` sequences: [rows, heads, capacity, head_dim], filled to `length`."""

    def __init__(self, rows: int, heads: int, capacity: int, head_dim: int, device, dtype):
        self.keys = torch.zeros(rows, heads, capacity, head_dim, device=device, dtype=dtype)
        self.values = torch.zeros_like(self.keys)
        self.length = 0

    def append(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        new = keys.shape[2]
        self.keys.narrow(2, self.length, new).copy_(keys)  # in place: the cache is allocated once, at its full size
        self.values.narrow(2, self.length, new).copy_(values)
        self.length += new
        return self.keys.narrow(2, 0, self.length), self.values.narrow(2, 0, self.length)

    def reorder(self, rows: Tensor) -> None:
        self.keys = self.keys.index_select(0, rows)
        self.values = self.values.index_select(0, rows)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.heads = config.num_heads
        self.qkv = nn.Linear(config.embedding_dim, 3 * config.embedding_dim, bias=config.bias)
        self.proj = nn.Linear(config.embedding_dim, config.embedding_dim, bias=config.bias)
        self.dropout = config.dropout
        self.residual_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)  # 3 x [B, T, C]
        q, k, v = (t.view(batch, length, self.heads, width // self.heads).transpose(1, 2) for t in (q, k, v))  # [B, h, T, d]
        causal = True
        if cache is not None:
            first = cache.length == 0
            k, v = cache.append(k, v)  # [B, h, past + T, d]
            # A prefill (empty cache) is causal over itself; one new token sees every cached key.
            causal = first and length > 1
            if not first and length > 1:
                raise ValueError("the KV cache takes one token at a time after the prompt")
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=causal)
        y = y.transpose(1, 2).reshape(batch, length, width)  # [B, T, C]
        return dropout(self.residual_dropout, self.proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = config.mlp_ratio * config.embedding_dim
        self.fc = nn.Linear(config.embedding_dim, hidden, bias=config.bias)
        self.proj = nn.Linear(hidden, config.embedding_dim, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(self.dropout, self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm: normalise the input of each sublayer, add its output to the residual stream."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.embedding_dim, bias=config.bias)
        self.attention = CausalSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.embedding_dim, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        x = x + self.attention(self.norm1(x), cache)
        return x + self.mlp(self.norm2(x))


# --------------------------------------------------------------------------------------------- model


class GPT(LanguageModel):
    family_name = "gpt"

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        width = config.embedding_dim
        self.token_embedding = nn.Embedding(config.vocab_size, width)
        if config.positions == "learned":
            self.position_embedding = nn.Embedding(config.context_length, width)
        else:
            self.position_embedding = None
            self.register_buffer("position_table", sinusoidal_embedding(torch.arange(config.context_length), width, interleave=True), persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(width, bias=config.bias)
        self.output = nn.Linear(width, config.vocab_size, bias=False)
        if config.tie_weights:
            self.output.weight = self.token_embedding.weight
        # GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 * layers) (GPT-2 paper §2.3).
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(parameter, 0.0, 0.02 / math.sqrt(2 * config.num_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def forward(self, inputs: Tensor, caches: list[KVCache] | None = None, start: int = 0) -> Tensor:
        """inputs [B, T] at positions start..start+T-1 -> logits [B, T, vocab]."""
        length = inputs.shape[1]
        if start + length > self.config.context_length:
            raise ValueError(f"{start + length} positions exceed context_length={self.config.context_length}")
        # Rows start..start+T-1 of the position table, sliced (the same values as an embedding lookup, one
        # op fewer per generated token).
        table = self.position_embedding.weight if self.position_embedding is not None else self.position_table
        x = dropout(self.dropout, self.token_embedding(inputs) + table[start : start + length])  # [B, T, C]
        for index, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[index])
        return self.output(self.norm(x))

    def new_caches(self, rows: int) -> list[KVCache]:
        config = self.config
        head_dim = config.embedding_dim // config.num_heads
        dtype = self.token_embedding.weight.dtype
        return [KVCache(rows, config.num_heads, config.context_length, head_dim, self.device, dtype) for _ in self.blocks]

    def start_decoding(self, prompt_ids: list[int], rows: int, use_cache: bool = True) -> tuple["GPTSession", Tensor]:
        # A prompt longer than the context keeps its end.
        visible = list(prompt_ids)[-(self.config.context_length - 1) :] if len(prompt_ids) >= self.config.context_length else list(prompt_ids)
        session = GPTSession(self, torch.tensor([visible] * rows, device=self.device), use_cache)
        return session, session.prefill()


def _direct(module: nn.Module) -> Callable[[Tensor], Tensor]:
    """A plain Linear, LayerNorm or Embedding as a direct functional call on its weights (the module call
    around it costs more than the op at this size); anything else — a LoRA wrapper, an int8 layer, a
    module with hooks — stays the module, so it computes what it computes in `forward`."""
    if module._forward_hooks or module._forward_pre_hooks:
        return module
    if type(module) is nn.Linear:
        if module.weight.device.type != "cpu":
            return functools.partial(F.linear, weight=module.weight, bias=module.bias)
        # x @ W^T with W^T stored contiguous [in, out]: MKL's faster layout for a few rows (the 128 x 2,048
        # output layer of gpt-shakespeare: 19 us instead of 32 us a token).
        transposed = module.weight.detach().t().contiguous()
        if module.bias is None:
            return functools.partial(torch.mm, mat2=transposed)
        return functools.partial(torch.addmm, module.bias.detach(), mat2=transposed)
    if type(module) is nn.LayerNorm:  # the aten op itself: F.layer_norm's wrapper costs as much as the op
        return functools.partial(torch.layer_norm, normalized_shape=module.normalized_shape, weight=module.weight, bias=module.bias, eps=module.eps)
    if type(module) is nn.Embedding and module.max_norm is None:
        return functools.partial(torch.embedding, module.weight)  # (weight, indices)
    return module


class DecodeStep:
    """`model(tokens[:, None], caches, start=position)[:, -1]` for one new token per row (eval mode): the
    same arithmetic with fewer calls (module docstring), logits float32 [rows, vocab]. Built for each
    decoding session, so it uses the weights of that moment."""

    def __init__(self, model: "GPT"):
        config = model.config
        self.heads, self.head_dim = config.num_heads, config.embedding_dim // config.num_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)  # SDPA's default scale
        self.embed = _direct(model.token_embedding)
        self.positions = model.position_embedding.weight if model.position_embedding is not None else model.position_table
        self.layers = [
            tuple(_direct(m) for m in (b.norm1, b.attention.qkv, b.attention.proj, b.norm2, b.mlp.fc, b.mlp.proj)) for b in model.blocks
        ]
        self.norm, self.output = _direct(model.norm), _direct(model.output)

    def __call__(self, tokens: Tensor, position: int, caches: list[KVCache]) -> Tensor:
        rows = tokens.shape[0]
        x = self.embed(tokens) + self.positions[position]  # [rows, C]
        for (norm1, qkv, proj, norm2, fc, fc_proj), cache in zip(self.layers, caches):
            q, k, v = qkv(norm1(x)).view(rows, 3, self.heads, 1, self.head_dim).unbind(1)  # 3 x [rows, h, 1, d]
            keys, values = cache.append(k, v)  # [rows, h, position + 1, d]
            weights = (q @ keys.transpose(-1, -2) * self.scale).softmax(dim=-1)  # [rows, h, 1, position + 1]
            x = x + proj((weights @ values).view(rows, -1))  # heads side by side: [rows, C]
            x = x + fc_proj(F.gelu(fc(norm2(x))))
        return self.output(self.norm(x)).float()


class GPTSession:
    """Decoding state of `rows` sequences: the visible context [rows, n] and, with use_cache, its KV cache."""

    def __init__(self, model: GPT, context: Tensor, use_cache: bool):
        self.model, self.context, self.use_cache = model, context, use_cache
        self.device = context.device  # the model's (looked up once: `model.device` walks its parameters)
        self.caches: list[KVCache] | None = None
        self.step = DecodeStep(model) if use_cache and not model.training else None  # training mode: forward (dropout)

    def prefill(self) -> Tensor:
        """Encode the whole visible context (filling the cache); logits of the next token [rows, vocab]."""
        self.caches = self.model.new_caches(self.context.shape[0]) if self.use_cache else None
        return self.model(self.context, self.caches)[:, -1].float()

    def advance(self, tokens: Tensor) -> Tensor:
        tokens = tokens.to(self.device).view(-1, 1)
        self.context = torch.cat([self.context, tokens], dim=1)  # [rows, n + 1]
        limit = self.model.config.context_length
        if self.context.shape[1] > limit:
            self.context = self.context[:, -(limit // 2) :]  # slide: keep the last half, re-encode it
            return self.prefill()
        if not self.use_cache:
            return self.model(self.context)[:, -1].float()
        start = self.context.shape[1] - 1
        if self.step is not None:
            return self.step(tokens.view(-1), start, self.caches)
        return self.model(tokens, self.caches, start=start)[:, -1].float()

    def reorder(self, rows: Tensor) -> None:
        rows = rows.to(self.device)
        self.context = self.context.index_select(0, rows)
        for cache in self.caches or []:
            cache.reorder(rows)


register_model("gpt", modality="text", config=GPTConfig, description="GPT-style Transformer language model with a KV cache (Radford et al. 2018)")(GPT)

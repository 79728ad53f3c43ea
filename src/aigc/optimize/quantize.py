"""--quantize dynamic: int8 weights for every Linear layer generation uses; activations quantised on the fly.

Weights: symmetric int8 per output channel, scale_o = max_i |W[o, i]| / 127 (so the stored int8 tensor and
its scales are all there is; the file holds 1 byte per weight instead of 4). Activations: quantised per
tensor at each call from their own min/max ("dynamic"), multiplied in int8 and accumulated in int32 by
PyTorch's x86 kernel (`torch.ops.quantized.linear_dynamic`, fbgemm/oneDNN) — the kernel of
`torch.ao.quantization.quantize_dynamic`.

Why a module of our own instead of `quantize_dynamic`'s: its packed weights are not tensors, so they do not
go into safetensors (this project never pickles); `Int8Linear` keeps plain int8/float32 tensors in its
state dict and packs them for the kernel on first use. `torch.ao.quantization` is deprecated in torch 2.13
in favour of torchao's `quantize_`; torchao 0.18 installs for torch 2.13 CPU but fails to load two of its
native libraries here and stores tensor subclasses that safetensors cannot hold, so it is not used.

Embedding tables are stored as int8 rows too (weight-only: a lookup dequantises its rows), and an output
layer tied to one shares its int8 rows. Convolutions, recurrent layers and norms have no dynamic int8
kernel here: they stay float32, and the record (and a warning) names them. Quantise last: an int8 network is for generation, not for further training.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from aigc.errors import AigcError, AigcWarning, CheckpointError
from aigc.optimize.modules import generation_modules, get_submodule, set_submodule
from aigc.registry import TRANSFORMS, TransformSpec

NAME = "quantize-dynamic"
SCHEME = "int8 weights per output channel (symmetric), int8 activations per tensor at run time; fbgemm/oneDNN kernel"
FLOAT_KINDS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.LSTM, nn.GRU, nn.RNN)  # layers with weights that stay float
COMPOSITE = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.MultiheadAttention)


class Int8Linear(nn.Module):
    """y = x W^T + b with W stored as int8 [out, in] and a float32 scale per output row."""

    def __init__(self, in_features: int, out_features: int, bias: bool):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self._packed = None  # the kernel's packed weights, made from the buffers on first use

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Int8Linear":
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None)
        weight_int8, scale = _int8_rows(linear.weight.detach().float())  # rows of W are output channels
        layer.weight_int8.copy_(weight_int8)
        layer.weight_scale.copy_(scale)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach())
        return layer

    def dequantized_weight(self) -> Tensor:
        return self.weight_int8.float() * self.weight_scale[:, None]

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._packed = None  # new weights: pack again

    def _apply(self, fn, recurse=True):
        self._packed = None  # moved or cast: pack again from the buffers
        return super()._apply(fn, recurse)

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            raise AigcError("int8 layers run on the CPU only", field="device", fix="load this model with device='cpu'")
        if self._packed is None:
            zero_points = torch.zeros(self.out_features, dtype=torch.long)
            with warnings.catch_warnings():  # torch 2.13 warns that quantized tensors are deprecated (see above)
                warnings.simplefilter("ignore")
                weight = torch._make_per_channel_quantized_tensor(self.weight_int8, self.weight_scale.double(), zero_points, 0)
                self._packed = torch.ops.quantized.linear_prepack(weight, self.bias)
        # reduce_range: 7-bit activations, as quantize_dynamic does on x86, so int8 x int8 sums cannot saturate
        return torch.ops.quantized.linear_dynamic(x.float().contiguous(), self._packed, True)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, int8"


class Int8Embedding(nn.Module):
    """An embedding table stored as int8 rows with a float32 scale per row; looked-up rows are dequantised.

    A language model's output layer tied to the table (GPT, `tie_weights`) becomes an Int8Linear that shares
    these very buffers: the per-row scales of the table are the per-output-channel scales of the layer."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.register_buffer("weight_int8", torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(num_embeddings))

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding) -> "Int8Embedding":
        layer = cls(embedding.num_embeddings, embedding.embedding_dim)
        rows = _int8_rows(embedding.weight.detach().float())
        layer.weight_int8.copy_(rows[0])
        layer.weight_scale.copy_(rows[1])
        return layer

    @property
    def weight(self) -> Tensor:
        """The table dequantised (float32), for code that reads the embedding's values or dtype."""
        return self.weight_int8.float() * self.weight_scale[:, None]

    def forward(self, ids: Tensor) -> Tensor:
        return self.weight_int8[ids].float() * self.weight_scale[ids].unsqueeze(-1)  # [..., dim]

    def tied_linear(self, bias: bool = False) -> Int8Linear:
        """An output layer over this table (logits = x E^T) that shares its int8 rows and scales."""
        layer = Int8Linear(self.embedding_dim, self.num_embeddings, bias)
        layer.weight_int8, layer.weight_scale = self.weight_int8, self.weight_scale  # the same tensors, not copies
        return layer

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8"


def _int8_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8 per row: (int8 [rows, cols], float32 scale [rows]) with scale = max |row| / 127."""
    scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


def quantize_dynamic(module: nn.Module) -> dict:
    """Replace every Linear layer generation uses by an Int8Linear, in place; the transform's record."""
    layers = generation_modules(module)
    embeddings = {id(layer.weight): path for path, layer in layers if type(layer) is nn.Embedding}
    tied = {path: embeddings[id(layer.weight)] for path, layer in layers if type(layer) is nn.Linear and id(layer.weight) in embeddings}
    # PyTorch's own Transformer layers read their Linear children's .weight directly (the fused fast path):
    # those stay float, named with the rest.
    composite = tuple(f"{path}." for path, layer in layers if isinstance(layer, COMPOSITE))
    linear = [path for path, layer in layers if type(layer) is nn.Linear and path not in tied and not path.startswith(composite)]
    float_layers = [path for path, layer in layers if isinstance(layer, FLOAT_KINDS)
                    or (type(layer) is nn.Linear and path.startswith(composite))]
    if not linear and not embeddings:
        raise AigcError(
            f"{type(module).__name__} has no Linear layer or embedding table to quantise dynamically; its layers with weights "
            f"({', '.join(float_layers[:6]) or 'none'}) have no dynamic int8 kernel here",
            field="--quantize", fix="prune it (--prune 0.5 --structured) or export it (--export onnx) instead",
        )
    for path in linear:
        set_submodule(module, path, Int8Linear.from_linear(module.get_submodule(path)))
    for path in embeddings.values():  # weight-only int8: a lookup needs no matrix kernel
        set_submodule(module, path, Int8Embedding.from_embedding(module.get_submodule(path)))
    for path, table in tied.items():
        set_submodule(module, path, module.get_submodule(table).tied_linear(module.get_submodule(path).bias is not None))
    if float_layers:
        warnings.warn(
            f"--quantize dynamic: {len(float_layers)} layer(s) have no dynamic int8 kernel and stay float32: {', '.join(float_layers[:8])}"
            + (", ..." if len(float_layers) > 8 else ""),
            AigcWarning, stacklevel=2,
        )
    return {"name": NAME, "scheme": SCHEME, "layers": linear, "embeddings": sorted(embeddings.values()), "tied": tied,
            "float_layers": float_layers}


def rebuild(module: nn.Module, record: dict) -> nn.Module:
    """Loading: put empty Int8Linear layers where the record says, so the int8 weights fit."""
    for path in record.get("layers", []):
        layer = get_submodule(module, path)
        if not isinstance(layer, nn.Linear):
            raise CheckpointError(
                f"the checkpoint quantised {path!r} as a Linear layer, but in the network built from its config it is a {type(layer).__name__}",
                field="transforms", fix="the checkpoint and its config come from different versions; optimise the run again",
            )
        set_submodule(module, path, Int8Linear(layer.in_features, layer.out_features, layer.bias is not None))
    for path in record.get("embeddings", []):
        layer = get_submodule(module, path)
        set_submodule(module, path, Int8Embedding(layer.num_embeddings, layer.embedding_dim))
    for path, table in record.get("tied", {}).items():
        set_submodule(module, path, get_submodule(module, table).tied_linear(get_submodule(module, path).bias is not None))
    return module


TRANSFORMS.register(NAME, TransformSpec(NAME, rebuild, "int8 weights for Linear layers, dynamic int8 activations"))

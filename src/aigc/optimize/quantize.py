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

from aigc.errors import AigcError, AigcWarning
from aigc.optimize.modules import generation_modules, get_submodule, recorded_layer, set_submodule
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
        layer = recorded_layer(module, path, (nn.Linear,), "quantised {path} as a Linear layer")
        set_submodule(module, path, Int8Linear(layer.in_features, layer.out_features, layer.bias is not None))
    for path in record.get("embeddings", []):
        layer = get_submodule(module, path)
        set_submodule(module, path, Int8Embedding(layer.num_embeddings, layer.embedding_dim))
    for path, table in record.get("tied", {}).items():
        set_submodule(module, path, get_submodule(module, table).tied_linear(get_submodule(module, path).bias is not None))
    return module


TRANSFORMS.register(NAME, TransformSpec(NAME, rebuild, "int8 weights for Linear layers, dynamic int8 activations"))


# ------------------------------------------------------------------------------------------ --quantize static

STATIC_NAME = "quantize-static"
STATIC_SCHEME = ("int8 weights (per output channel; per tensor for transposed convs), int8 activations per tensor with "
                 "scales fixed by calibration; quantized::linear / conv2d / conv_transpose2d kernels (x86: fbgemm/oneDNN)")
STATIC_KINDS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
STATIC_TOLERANCE = 0.1  # a layer whose int8 output differs from float by more than this share of its range stays float


class StaticInt8(nn.Module):
    """A Linear, Conv2d or ConvTranspose2d computed in int8: the input is quantised with the scale and zero
    point fixed at calibration, multiplied with int8 weights (int32 sums), requantised to the calibrated
    output scale and handed on as float32 (so norms and activations between layers stay as they were).

    Activations are unsigned 7-bit affine (reduce_range, as PyTorch's x86 default, so u8 x s8 pair sums
    cannot saturate); weights symmetric int8. PyTorch has no per-channel kernel for transposed convs, and its
    oneDNN one gave wrong sums here (max error 2 on outputs of range 3, 64 -> 32 channels, torch 2.13), so
    transposed convs use one weight scale and fbgemm's kernel, which matches float."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        if not isinstance(layer, STATIC_KINDS):
            raise TypeError(f"no static int8 kernel for {type(layer).__name__}")
        self.kind = {nn.Linear: "linear", nn.Conv2d: "conv2d", nn.ConvTranspose2d: "conv_transpose2d"}[type(layer)]
        self.geometry = {} if self.kind == "linear" else {
            "stride": list(layer.stride), "padding": list(layer.padding), "dilation": list(layer.dilation), "groups": layer.groups,
            **({"output_padding": list(layer.output_padding)} if self.kind == "conv_transpose2d" else {}),
        }
        self.weight_axis = 1 if self.kind == "conv_transpose2d" else 0  # output channels of the weight tensor
        channels = layer.weight.shape[self.weight_axis] * (layer.groups if self.kind == "conv_transpose2d" else 1)
        self.register_buffer("weight_int8", torch.zeros(layer.weight.shape, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(1 if self.kind == "conv_transpose2d" else layer.weight.shape[0]))
        self.register_buffer("bias", torch.zeros(channels) if layer.bias is not None else None)
        self.register_buffer("activation_scales", torch.ones(2))  # input, output
        self.register_buffer("activation_zero_points", torch.zeros(2, dtype=torch.long))
        self._packed = None

    @classmethod
    def from_float(cls, layer: nn.Module, input_range: tuple[float, float], output_range: tuple[float, float]) -> "StaticInt8":
        quantized = cls(layer)
        weight = layer.weight.detach().float()
        if quantized.kind == "conv_transpose2d":
            scale = weight.abs().max().clamp(min=1e-12).reshape(1) / 127
            quantized.weight_int8.copy_(torch.round(weight / scale).clamp(-127, 127).to(torch.int8))
        else:
            rows, scale = _int8_rows(weight.flatten(1))
            quantized.weight_int8.copy_(rows.view_as(weight))
        quantized.weight_scale.copy_(scale)
        if layer.bias is not None:
            quantized.bias.copy_(layer.bias.detach())
        for index, (low, high) in enumerate((input_range, output_range)):
            scale, zero_point = _activation_grid(low, high, levels=127 if index == 0 else 255)
            quantized.activation_scales[index], quantized.activation_zero_points[index] = scale, zero_point
        return quantized

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._packed = None

    def _apply(self, fn, recurse=True):
        self._packed = None
        return super()._apply(fn, recurse)

    def _pack(self):
        with warnings.catch_warnings():  # torch 2.13 warns that quantized tensors are deprecated (see the top of this file)
            warnings.simplefilter("ignore")
            if self.kind == "conv_transpose2d":
                weight = torch.quantize_per_tensor(self.weight_int8.float() * self.weight_scale, float(self.weight_scale), 0, torch.qint8)
            else:
                zero_points = torch.zeros(self.weight_scale.numel(), dtype=torch.long)
                weight = torch._make_per_channel_quantized_tensor(self.weight_int8, self.weight_scale.double(), zero_points, 0)
            g = self.geometry
            if self.kind == "linear":
                return torch.ops.quantized.linear_prepack(weight, self.bias)
            if self.kind == "conv2d":
                return torch.ops.quantized.conv2d_prepack(weight, self.bias, g["stride"], g["padding"], g["dilation"], g["groups"])
            engine = torch.backends.quantized.engine
            torch.backends.quantized.engine = "fbgemm"  # the packed weights carry their kernel; see the class docstring
            try:
                return torch.ops.quantized.conv_transpose2d_prepack(weight, self.bias, g["stride"], g["padding"], g["output_padding"], g["dilation"], g["groups"])
            finally:
                torch.backends.quantized.engine = engine

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            raise AigcError("int8 layers run on the CPU only", field="device", fix="load this model with device='cpu'")
        if self._packed is None:
            self._packed = self._pack()
        (in_scale, out_scale), (in_zero, out_zero) = self.activation_scales.tolist(), self.activation_zero_points.tolist()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantized = torch.quantize_per_tensor(x.float().contiguous(), in_scale, in_zero, torch.quint8)
            kernel = getattr(torch.ops.quantized, self.kind)
            if self.kind == "linear":
                shape = quantized.shape
                out = kernel(quantized.reshape(-1, shape[-1]), self._packed, out_scale, out_zero)
                return out.dequantize().reshape(*shape[:-1], -1)
            return kernel(quantized, self._packed, out_scale, out_zero).dequantize()

    def extra_repr(self) -> str:
        return f"{self.kind}, weight {tuple(self.weight_int8.shape)}, int8 static"


def _activation_grid(low: float, high: float, levels: int) -> tuple[float, int]:
    """Affine uint8 grid over [min(low, 0), max(high, 0)] with `levels` steps: (scale, zero point)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, 1e-8) / levels
    return scale, int(round(-low / scale))


def quantize_static(module: nn.Module, calibrate, *, tolerance: float = STATIC_TOLERANCE) -> dict:
    """--quantize static: calibrate activation ranges by running `calibrate()` (the family's generation, N
    requests) with observers on every Linear/Conv2d/ConvTranspose2d generation uses, then replace each by a
    StaticInt8 layer, in place. A layer stays float32, named with the reason, when it has no static int8
    kernel here, generation never ran it, or its int8 output on the first calibration input differs from
    float by more than `tolerance` of the output's range. The transform's record."""
    layers = generation_modules(module)
    composite = tuple(f"{path}." for path, layer in layers if isinstance(layer, COMPOSITE))
    float_layers: dict[str, str] = {}
    candidates = {}
    tables = {id(layer.weight): path for path, layer in layers if type(layer) is nn.Embedding}
    for path, layer in layers:
        if type(layer) is nn.Linear and id(layer.weight) in tables:
            float_layers[path] = f"shares its weights with the embedding table {tables[id(layer.weight)]} (kept one float tensor)"
        elif path.startswith(composite) and isinstance(layer, nn.Linear):
            float_layers[path] = "inside a PyTorch Transformer layer (fused fast path reads its weights)"
        elif isinstance(layer, STATIC_KINDS) and getattr(layer, "padding_mode", "zeros") != "zeros":
            float_layers[path] = f"padding_mode={layer.padding_mode!r} (int8 kernels pad with zeros only)"
        elif type(layer) in STATIC_KINDS:
            candidates[path] = layer
        elif isinstance(layer, (*FLOAT_KINDS, nn.Embedding, nn.modules.conv._ConvNd)):
            float_layers[path] = f"{type(layer).__name__}: no static int8 kernel here"
    if not candidates:
        raise AigcError(
            f"{type(module).__name__} has no Linear, Conv2d or ConvTranspose2d layer to quantise statically"
            + (f"; its layers with weights ({', '.join(list(float_layers)[:6])}) stay float" if float_layers else ""),
            field="--quantize", fix="prune it (--prune 0.5 --structured), export it (--export onnx), or try --quantize dynamic",
        )
    ranges: dict[str, list[float]] = {}
    first_input: dict[str, Tensor] = {}

    def observe(path):
        def hook(layer, inputs, output):
            x = inputs[0].detach()
            seen = ranges.setdefault(path, [float("inf"), float("-inf"), float("inf"), float("-inf")])
            seen[0], seen[1] = min(seen[0], float(x.min())), max(seen[1], float(x.max()))
            seen[2], seen[3] = min(seen[2], float(output.min())), max(seen[3], float(output.max()))
            first_input.setdefault(path, x[:8].clone())
        return hook

    handles = [layer.register_forward_hook(observe(path)) for path, layer in candidates.items()]
    try:
        with torch.no_grad():
            calibrate()
    finally:
        for handle in handles:
            handle.remove()
    quantized, errors = [], {}
    for path, layer in candidates.items():
        if path not in ranges:
            float_layers[path] = "generation never ran it during calibration"
            continue
        low, high, out_low, out_high = ranges[path]
        replacement = StaticInt8.from_float(layer, (low, high), (out_low, out_high))
        with torch.no_grad():
            exact, approx = layer(first_input[path]), replacement(first_input[path])
        error = float((approx - exact).abs().max()) / max(out_high - out_low, 1e-8)
        errors[path] = round(error, 5)
        if error > tolerance:
            float_layers[path] = f"the int8 kernel's output differs from float by {error:.0%} of its range (limit {tolerance:.0%})"
            continue
        set_submodule(module, path, replacement)
        quantized.append(path)
    if not quantized:
        raise AigcError(f"no layer of {type(module).__name__} could be quantised statically: "
                        + "; ".join(f"{p}: {why}" for p, why in list(float_layers.items())[:4]),
                        field="--quantize", fix="try --quantize dynamic, or leave --quantize out")
    if float_layers:
        warnings.warn(f"--quantize static: {len(float_layers)} layer(s) stay float32: "
                      + "; ".join(f"{p} ({why})" for p, why in list(float_layers.items())[:6])
                      + ("; ..." if len(float_layers) > 6 else ""), AigcWarning, stacklevel=2)
    return {"name": STATIC_NAME, "scheme": STATIC_SCHEME, "layers": quantized, "float_layers": float_layers,
            "calibration_error": errors}


def rebuild_static(module: nn.Module, record: dict) -> nn.Module:
    """Loading: empty StaticInt8 layers where the record says, shaped from the float layers they replace."""
    for path in record.get("layers", []):
        set_submodule(module, path, StaticInt8(recorded_layer(module, path, STATIC_KINDS, "quantised {path} statically")))
    return module


TRANSFORMS.register(STATIC_NAME, TransformSpec(STATIC_NAME, rebuild_static, "int8 weights and calibrated int8 activations for Linear and conv layers"))

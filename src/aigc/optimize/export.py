"""--export onnx: the network generation runs, as an ONNX graph, checked against PyTorch with onnxruntime.

    GAN generators   noise [B, noise_dim] (+ labels [B] int64 for class-conditional ones) -> images [B, C, H, W]
    diffusion U-Net  sample [B, C, H, W], timesteps [B] int64 (+ condition [B, D]) -> prediction [B, C, H, W]
                     (one denoising step: the scheduler and its loop stay in Python)
    the GPT          model.onnx  (prefill) ids [B, T] int64 -> logits [B, T, vocab], keys and values [B, L, h, T, d]
                     decode.onnx (one token with the KV cache) ids [B, 1], past_keys and past_values
                     [B, L, h, P, d] -> logits [B, vocab], keys and values [B, L, h, P + 1, d]

`torch.onnx.export(..., dynamo=True)` traces with torch.export and writes the graph with onnxscript;
`external_data=False` keeps the weights inside the one .onnx file; the batch (and the text length) are
dynamic. The GPT's two graphs hold the same weights, so after both pass their checks the weights move into
one file beside them (`weights.onnx.data`, ONNX external data) that both graphs point into, and both are
checked again: the export is the model's size once, not twice. The parity check runs onnxruntime and PyTorch on the same inputs and fails, saying the
difference, when they disagree by more than `TOLERANCE`. RUN-small/onnx/onnx.json records inputs,
outputs, the difference and the versions. `with_onnxruntime(model, folder)` makes a loaded GAN generate
through the exported graph (`aigc generate RUN --backend onnxruntime`): the family's own `generate`
draws the noise as always, and the graph replaces its generator network; a GPT decodes with the two
graphs (prefill, then one token at a time with the cache as graph inputs and outputs), the family's
sampling in Python choosing the tokens as always.

Both GPT graphs trace the model's own forward: the prefill is its cache-free causal pass, whose keys and
values are read from each block's qkv projection by a hook; the decode step passes, per block, a cache
object whose `append` concatenates the past (graph inputs) with the new key/value instead of writing into
a preallocated buffer (an ONNX graph has no in-place state).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aigc.errors import AigcError
from aigc.files import atomic_write_text
from aigc.loading import LoadedModel

TOLERANCE = 1e-3  # max |onnxruntime - PyTorch| accepted, in output units (images in [-1, 1], logits)
GRAPH = "model.onnx"
DECODE_GRAPH = "decode.onnx"  # the GPT's one-token step with the KV cache
SHARED_WEIGHTS = "weights.onnx.data"  # the GPT graphs' weights, stored once (ONNX external data)
SHARED_MIN_BYTES = 1024  # smaller initializers (shapes, scalars) stay inside each graph
RECORD = "onnx.json"


@dataclass(frozen=True)
class Graph:
    """What is exported: the network, example inputs, their names and which axes may vary."""

    network: nn.Module
    inputs: tuple[Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic: dict[str, dict[int, str]]  # input name -> {axis: name}
    file: str = GRAPH
    limits: dict[str, int] | None = None  # axis name -> largest size (the GPT's past length)


class _Prefill(nn.Module):
    """ids [B, T] -> (logits [B, T, vocab], keys, values [B, L, h, T, d]): the GPT's causal forward without a
    cache; each block's keys and values are taken from its qkv projection's output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        heads = self.model.config.num_heads
        keys, values = [], []

        def capture(layer, inputs, output):  # [B, T, 3C] -> k, v [B, h, T, d], as CausalSelfAttention splits it
            batch, length, width = output.shape[0], output.shape[1], output.shape[2] // 3
            _, k, v = output.split(width, dim=2)
            keys.append(k.reshape(batch, length, heads, width // heads).transpose(1, 2))
            values.append(v.reshape(batch, length, heads, width // heads).transpose(1, 2))

        hooks = [block.attention.qkv.register_forward_hook(capture) for block in self.model.blocks]
        try:
            logits = self.model(ids)
        finally:
            for hook in hooks:
                hook.remove()
        return logits, torch.stack(keys, dim=1), torch.stack(values, dim=1)


class _GraphCache:
    """The GPT's KVCache interface over graph tensors: `append` concatenates the past keys/values [B, h, P, d]
    with the new ones (the model's own cache writes into a preallocated buffer, which a graph cannot hold)."""

    def __init__(self, keys: Tensor, values: Tensor):
        self.keys, self.values = keys, values
        # The attention asks only whether the cache is empty (a prefill): never in this graph, whose past
        # axis starts at 1 (the prefill graph fills the first positions). A plain int, so the answer is
        # fixed when tracing instead of becoming a symbolic condition in the graph.
        self.length = 1

    def append(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        self.keys, self.values = torch.cat([self.keys, keys], dim=2), torch.cat([self.values, values], dim=2)
        return self.keys, self.values


class _Decode(nn.Module):
    """(ids [B, 1], past keys, past values [B, L, h, P, d]) -> (logits [B, vocab], keys, values [B, L, h, P + 1, d]):
    one new token at position P through the model's forward with the cache."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor, past_keys: Tensor, past_values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        caches = [_GraphCache(past_keys[:, index], past_values[:, index]) for index in range(len(self.model.blocks))]
        logits = self.model(ids, caches, start=past_keys.shape[3])[:, -1]
        return logits, torch.stack([c.keys for c in caches], dim=1), torch.stack([c.values for c in caches], dim=1)


def gpt_graphs(module: nn.Module) -> list[Graph]:
    """The prefill graph (model.onnx) and the one-token decode graph with the KV cache (decode.onnx)."""
    config, seeded = module.config, torch.Generator().manual_seed(0)
    length = min(8, config.context_length)
    ids = torch.randint(0, config.vocab_size, (2, length), generator=seeded)
    kv = ["keys", "values"]
    prefill = Graph(_Prefill(module), (ids,), ["ids"], ["logits", *kv], {"ids": {0: "batch", 1: "length"}})
    past = min(3, config.context_length - 1)
    shape = (2, config.num_layers, config.num_heads, past, config.embedding_dim // config.num_heads)
    inputs = (ids[:, :1], torch.randn(*shape, generator=seeded), torch.randn(*shape, generator=seeded))
    axes = {"ids": {0: "batch"}, "past_keys": {0: "batch", 3: "past"}, "past_values": {0: "batch", 3: "past"}}
    # The last position a new token may take is context_length - 1 (then the context slides and is prefilled).
    decode = Graph(_Decode(module), inputs, ["ids", "past_keys", "past_values"], ["logits", *kv], axes, file=DECODE_GRAPH,
                   limits={"past": config.context_length - 1})
    return [prefill, decode]


def graph_for(model: LoadedModel) -> Graph | list[Graph]:
    module = model.module
    generator = getattr(module, "generator", None)
    if generator is not None and hasattr(generator, "noise_dim") and getattr(generator, "augmentation", None) is None:
        noise = torch.randn(3, generator.noise_dim, generator=torch.Generator().manual_seed(0))
        if getattr(generator, "label_embedding", None) is not None:
            labels = torch.arange(3) % generator.label_embedding.num_embeddings
            return Graph(generator, (noise, labels), ["noise", "labels"], ["images"], {"noise": {0: "batch"}, "labels": {0: "batch"}})
        return Graph(generator, (noise,), ["noise"], ["images"], {"noise": {0: "batch"}})
    unet = getattr(module, "unet", None)
    if unet is not None and hasattr(unet, "time_mlp"):
        size, channels = module.config.image_size, module.config.channels
        seeded = torch.Generator().manual_seed(0)
        inputs = (torch.randn(3, channels, size, size, generator=seeded), torch.tensor([1, 500, 999]) % module.config.num_train_timesteps)
        names, axes = ["sample", "timesteps"], {"sample": {0: "batch"}, "timesteps": {0: "batch"}}
        if getattr(module.config, "conditioning", "none") != "none":  # conditional models always pass one (the null one for guidance)
            inputs += (torch.randn(3, 4 * unet.base_channels, generator=seeded),)
            names.append("condition")
            axes["condition"] = {0: "batch"}
        return Graph(unet, inputs, names, ["prediction"], axes)
    from aigc.models.text.common import LanguageModel

    if isinstance(module, LanguageModel) and hasattr(module, "new_caches"):
        return gpt_graphs(module)
    raise AigcError(
        f"no ONNX export for the {model.info.family} family yet: only GAN generators (noise or class label), diffusion U-Nets and the GPT are exported",
        field="--export", fix="leave --export out for this model",
    )


def _require_packages() -> None:
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise AigcError(f"--export onnx needs {', '.join(missing)}", field="--export", fix="pip install 'aigc[export]' (make installs it)")


def _unexportable_ops(network: nn.Module) -> list[str]:
    """Layers whose kernels have no ONNX form here (int8 layers call quantized::linear_dynamic)."""
    from aigc.optimize.quantize import Int8Linear, StaticInt8

    return [f"{name} (quantized::linear_dynamic)" if isinstance(layer, Int8Linear) else f"{name} (quantized::{layer.kind})"
            for name, layer in network.named_modules() if isinstance(layer, (Int8Linear, StaticInt8))]


def export_onnx(model: LoadedModel, folder: Path, *, tolerance: float = TOLERANCE) -> list[Path]:
    """Write folder/model.onnx (and a GPT's folder/decode.onnx) and folder/onnx.json; fails when onnxruntime
    disagrees with PyTorch. The record's top level describes model.onnx; `graphs` lists every graph."""
    _require_packages()
    found = graph_for(model)
    graphs = found if isinstance(found, list) else [found]
    blocked = _unexportable_ops(graphs[0].network)
    if blocked:
        raise AigcError(
            f"{model.info.model_name} has layers with no ONNX export: {', '.join(blocked[:3])}",
            field="--export", fix="export the float run (before --quantize), or quantise inside onnxruntime instead",
        )
    folder.mkdir(parents=True, exist_ok=True)
    entries = [_export_graph(model, graph, folder, tolerance) for graph in graphs]
    shared: dict[str, Any] = {}
    if len(graphs) > 1:
        shared = {"shared_weights": _share_weights(folder, [graph.file for graph in graphs])}
        for graph, entry in zip(graphs, entries):  # the rewritten graphs, checked again
            entry.update(bytes=(folder / graph.file).stat().st_size, max_abs_difference=max(entry["max_abs_difference"], _checked(graph, folder / graph.file, tolerance)))
    record = {**entries[0], "tolerance": tolerance, "versions": _versions(), "model": model.info.model_name,
              "checkpoint_sha256": model.info.checkpoint_sha256, "graphs": entries, **shared}
    atomic_write_text(folder / RECORD, json.dumps(record, indent=2) + "\n")
    return [folder / graph.file for graph in graphs] + ([folder / SHARED_WEIGHTS] if shared else []) + [folder / RECORD]


def _share_weights(folder: Path, files: list[str]) -> dict[str, Any]:
    """Move the graphs' large initializers into one external-data file, each distinct tensor once (equal
    type, shape and bytes: the same weight), and point every graph at it; returns {file, bytes, tensors}."""
    import hashlib

    import onnx
    from onnx.external_data_helper import set_external_data

    models = [onnx.load(str(folder / name)) for name in files]
    placed: dict[tuple, tuple[int, int]] = {}
    staging = folder / f".{SHARED_WEIGHTS}.tmp"
    with open(staging, "wb") as data:
        for graph in models:
            for tensor in graph.graph.initializer:
                if tensor.data_location == onnx.TensorProto.EXTERNAL or not tensor.HasField("raw_data") or len(tensor.raw_data) < SHARED_MIN_BYTES:
                    continue
                raw = tensor.raw_data
                key = (tensor.data_type, tuple(tensor.dims), hashlib.sha256(raw).hexdigest())
                if key not in placed:
                    data.seek(0, 2)
                    data.write(b"\0" * (-data.tell() % 64))  # aligned, so a runtime may map it
                    placed[key] = (data.tell(), len(raw))
                    data.write(raw)
                offset, length = placed[key]
                set_external_data(tensor, SHARED_WEIGHTS, offset=offset, length=length)  # (it wants the raw data still there)
                tensor.data_location = onnx.TensorProto.EXTERNAL
                tensor.ClearField("raw_data")
        data.flush()
    staging.replace(folder / SHARED_WEIGHTS)
    for graph, name in zip(models, files):
        staged = folder / f".{name}.tmp"
        onnx.save(graph, str(staged))  # (no raw data left in the shared tensors: nothing else is written)
        staged.replace(folder / name)
    return {"file": SHARED_WEIGHTS, "bytes": (folder / SHARED_WEIGHTS).stat().st_size, "tensors": len(placed)}


def _checked(graph: Graph, path: Path, tolerance: float) -> float:
    difference = parity(graph, path)
    if difference > tolerance:
        raise AigcError(f"onnxruntime's outputs differ from PyTorch's by up to {difference:.3g} in {graph.file} (tolerance {tolerance:g})",
                        field="--export", fix="do not ship this graph; report it with the model and torch/onnxruntime versions")
    return difference


def _export_graph(model: LoadedModel, graph: Graph, folder: Path, tolerance: float) -> dict[str, Any]:
    path = folder / graph.file
    limits = graph.limits or {}
    dynamic = {name: {axis: torch.export.Dim(label, min=1, **({"max": limits[label]} if label in limits else {}))
                      for axis, label in axes.items()} for name, axes in graph.dynamic.items()}
    graph.network.eval()
    quiet = logging.getLogger("torch.onnx")  # it lists torchvision ops it skips: this project has no torchvision
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph.network, graph.inputs, dynamo=True, external_data=False,
                                        input_names=graph.input_names, output_names=graph.output_names,
                                        dynamic_shapes=tuple(dynamic.get(name, {}) for name in graph.input_names), verbose=False)
            program.save(str(path), external_data=False)
    except Exception as error:  # torch.export names the op it cannot trace or translate
        raise AigcError(f"{model.info.model_name} could not be exported to ONNX ({graph.file}): {str(error).splitlines()[0][:300]}",
                        field="--export", fix="leave --export out for this model") from None
    finally:
        quiet.setLevel(level)
    difference = _checked(graph, path, tolerance)
    return {"graph": graph.file, "bytes": path.stat().st_size, "inputs": graph.input_names, "outputs": graph.output_names,
            "dynamic_axes": graph.dynamic, "max_abs_difference": difference}


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import onnxscript

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxscript": onnxscript.__version__, "onnxruntime": onnxruntime.__version__}


def session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same threads as PyTorch, for fair timings
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@torch.no_grad()
def parity(graph: Graph, path: Path) -> float:
    """Max |onnxruntime - PyTorch| on the example inputs and on inputs of another batch size."""
    runtime = session(path)
    worst = 0.0
    for inputs in (graph.inputs, tuple(torch.cat([t, t[:1]]) for t in graph.inputs)):  # batch 3 -> 4: the dynamic axis
        expected = graph.network(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = runtime.run(None, {name: t.numpy() for name, t in zip(graph.input_names, inputs)})
        worst = max([worst] + [float(abs(g - e.float().numpy()).max()) for g, e in zip(got, expected)])
    return worst


class OnnxRuntimeGenerator(nn.Module):
    """A GAN generator's forward run by onnxruntime: (noise [B, N], labels [B] or None) -> images [B, C, H, W]."""

    def __init__(self, original: nn.Module, path: Path):
        super().__init__()
        self.noise_dim = original.noise_dim
        self.label_embedding = original.label_embedding  # what the family's generate reads (class count)
        self.augmentation = None
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # the family reads the device from a parameter
        self.runtime = session(path)
        self.input_names = [i.name for i in self.runtime.get_inputs()]

    def forward(self, noise: Tensor, labels: Tensor | None = None) -> Tensor:
        feeds = {"noise": noise.float().numpy()}
        if "labels" in self.input_names:
            feeds["labels"] = labels.long().numpy()
        (images,) = self.runtime.run(None, feeds)
        return torch.from_numpy(images)


BACKENDS = ("torch", "onnxruntime")


def with_backend(model: LoadedModel, backend: str) -> LoadedModel:
    """`aigc generate --backend`: "torch" (as loaded) or "onnxruntime" (the run's ONNX export)."""
    if backend not in BACKENDS:
        raise AigcError(f"unknown backend {backend!r}", field="--backend", fix=f"use one of: {', '.join(BACKENDS)}")
    return model if backend == "torch" else with_onnxruntime(model)


class OnnxRuntimeUNet(nn.Module):
    """A diffusion U-Net's forward run by onnxruntime: (sample, timesteps, condition or None) -> prediction."""

    def __init__(self, original: nn.Module, path: Path):
        super().__init__()
        self.base_channels = original.base_channels
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        self.runtime = session(path)

    def forward(self, sample: Tensor, timesteps: Tensor, condition: Tensor | None = None) -> Tensor:
        feeds = {"sample": sample.float().numpy(), "timesteps": timesteps.long().numpy()}
        if condition is not None:
            feeds["condition"] = condition.float().numpy()
        (prediction,) = self.runtime.run(None, feeds)
        return torch.from_numpy(prediction)


def with_onnxruntime(model: LoadedModel, folder: Path | None = None) -> LoadedModel:
    """`model` generating through its exported graph (RUN/onnx/model.onnx) instead of PyTorch."""
    _require_packages()
    folder = folder or model.info.checkpoint.parent.parent / "onnx"
    path = folder / GRAPH
    if not path.is_file():
        raise AigcError(f"{path} does not exist: this run has no ONNX export", field="--backend",
                        fix="export it first: aigc optimize RUN --out RUN-onnx --export onnx, then generate from RUN-onnx")
    record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    if record.get("checkpoint_sha256") != model.info.checkpoint_sha256:
        raise AigcError(f"{path} was exported from other weights than {model.info.checkpoint}", field="--backend",
                        fix="export this run again with --export onnx")
    first_input = record.get("inputs", [None])[0]
    if first_input == "noise":
        model.module.generator = OnnxRuntimeGenerator(model.module.generator, path)
    elif first_input == "sample":
        model.module.unet = OnnxRuntimeUNet(model.module.unet, path)
    elif first_input == "ids" and (folder / DECODE_GRAPH).is_file():
        model.module.start_decoding = OnnxRuntimeGPT(model.module, path, folder / DECODE_GRAPH).start_decoding
    elif first_input == "ids":
        raise AigcError(f"{path} was exported without the KV cache graph ({DECODE_GRAPH}) that generation needs", field="--backend",
                        fix="export this run again with --export onnx")
    else:
        raise AigcError(f"--backend onnxruntime generates with GAN generators, diffusion U-Nets and the GPT; {model.info.family} runs through PyTorch",
                        field="--backend", fix="leave --backend out")
    return model


class OnnxRuntimeGPT:
    """The GPT's `start_decoding` through its two graphs: sessions that prefill with model.onnx and take one
    token at a time with decode.onnx, the KV cache passed in and out as arrays [rows, layers, heads, P, d]."""

    def __init__(self, model: nn.Module, prefill: Path, decode: Path):
        self.limit = model.config.context_length
        self.prefill_runtime, self.decode_runtime = session(prefill), session(decode)

    def start_decoding(self, prompt_ids: list[int], rows: int, **options: Any) -> tuple["OnnxRuntimeGPTSession", Tensor]:
        """As GPT.start_decoding (a prompt longer than the context keeps its end); always with the cache."""
        visible = list(prompt_ids)[-(self.limit - 1):] if len(prompt_ids) >= self.limit else list(prompt_ids)
        decoding = OnnxRuntimeGPTSession(self, torch.tensor([visible] * rows))
        return decoding, decoding.prefill()


class OnnxRuntimeGPTSession:
    """A decoding session (prefill / advance / reorder, as GPTSession) whose network runs in onnxruntime."""

    def __init__(self, runtimes: OnnxRuntimeGPT, context: Tensor):
        self.runtimes, self.context = runtimes, context
        self.keys = self.values = None

    def prefill(self) -> Tensor:
        logits, self.keys, self.values = self.runtimes.prefill_runtime.run(None, {"ids": self.context.numpy()})
        return torch.from_numpy(logits[:, -1]).float()

    def advance(self, tokens: Tensor) -> Tensor:
        tokens = tokens.view(-1, 1).long()
        self.context = torch.cat([self.context, tokens], dim=1)
        limit = self.runtimes.limit
        if self.context.shape[1] > limit:  # GPTSession's rule: keep the last half and encode it again
            self.context = self.context[:, -(limit // 2):]
            return self.prefill()
        feeds = {"ids": tokens.numpy(), "past_keys": self.keys, "past_values": self.values}
        logits, self.keys, self.values = self.runtimes.decode_runtime.run(None, feeds)
        return torch.from_numpy(logits).float()

    def reorder(self, rows: Tensor) -> None:
        self.context = self.context.index_select(0, rows)
        self.keys, self.values = self.keys[rows.numpy()], self.values[rows.numpy()]

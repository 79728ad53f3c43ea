"""The one generation path (aigc/generation/pipeline.py), the modality-neutral request base, the artifacts'
files, and `aigc.load`'s typed record — on the real zoo models (shipped, trained) and real files."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import wave

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import aigc
from aigc.errors import AigcError, CheckpointError, ConfigError
from aigc.generation import pipeline
from aigc.generation.metadata import read_wav_info
from aigc.generation.outputs import AudioClip, ImageBatch
from aigc.generation.requests import DiffusionImageRequest, ImageRequest, PromptImageRequest, TextToImageRequest
from aigc.generation.text import TextRequest


@pytest.fixture(scope="module")
def cgan():
    return aigc.load("cgan-mnist")


def test_load_returns_the_module_and_a_typed_run_record(cgan):
    assert isinstance(cgan.module, torch.nn.Module) and not cgan.module.training
    info = cgan.info
    assert info.family == "cgan" and info.model_name == "cgan:zoo/cgan-mnist" and info.weights == "ema"
    sidecar_hash = info.sidecar["files"]["ema.safetensors"]
    assert info.checkpoint_sha256 == sidecar_hash[:16] and info.step == info.sidecar["step"] > 0
    assert not hasattr(cgan.module, "provenance") and not hasattr(cgan.module, "run_config")  # nothing patched on


def test_every_artifact_records_the_checkpoint_it_came_from(cgan):
    batch = cgan.generate(ImageRequest(count=3, seed=4, labels=[1]))
    assert batch.model == "cgan:zoo/cgan-mnist" and batch.seeds == [4, 5, 6] and batch.labels == [1, 1, 1]
    assert batch.parameters == {"checkpoint_sha256": cgan.info.checkpoint_sha256, "weights": "ema", "step": cgan.info.step}
    bare = pipeline.generate(cgan.module, ImageRequest(count=3, seed=4, labels=[1]))  # a module being trained: no run record
    assert bare.model == "cgan" and bare.parameters == {} and np.array_equal(bare.images, batch.images)


def test_a_policy_can_refuse_a_request_before_any_work(cgan):
    calls = []

    def refuse_sevens(request, info):
        calls.append(info.model_name)
        if 7 in (request.labels or []):
            raise AigcError("sevens are not allowed here", field="labels", fix="ask for another digit")

    policy = pipeline.GenerationPolicy(before=(refuse_sevens,))
    with pytest.raises(AigcError) as error:
        cgan.generate(ImageRequest(count=2, seed=0, labels=[7]), policy=policy)
    assert error.value.field == "labels" and "sevens" in str(error.value)
    assert len(cgan.generate(ImageRequest(count=2, seed=0, labels=[3]), policy=policy)) == 2
    assert calls == ["cgan:zoo/cgan-mnist"] * 2


def test_after_hooks_run_in_order_before_provenance_is_recorded(cgan):
    order = []

    def invert(batch, request, info):
        order.append("invert")
        return ImageBatch(255 - batch.images, batch.seeds, batch.labels, batch.model, {**batch.parameters, "inverted": True})

    def note(batch, request, info):
        order.append("note")
        assert batch.model == "cgan"  # the run's name is added last
        return batch

    plain = cgan.generate(ImageRequest(count=2, seed=9, labels=[0]))
    hooked = cgan.generate(ImageRequest(count=2, seed=9, labels=[0]), policy=pipeline.GenerationPolicy(after=(invert, note)))
    assert order == ["invert", "note"] and np.array_equal(hooked.images, 255 - plain.images)
    assert hooked.parameters["inverted"] is True and hooked.parameters["checkpoint_sha256"] == cgan.info.checkpoint_sha256


def test_requests_are_validated_into_the_models_own_class(cgan):
    assert isinstance(pipeline.validate(cgan.module, {"count": 2, "seed": 1}), type(cgan.module).request_class)
    with pytest.raises(ConfigError) as error:
        pipeline.validate(cgan.module, {"count": 2, "steps": 5})
    assert "request.steps: unknown key" in str(error.value) and "count" in error.value.fix
    diffusion = aigc.load("t2i-diffusion-mnist")
    general = PromptImageRequest(count=1, prompt="a seven")  # a random seed, drawn once
    coerced = pipeline.validate(diffusion.module, general)
    assert isinstance(coerced, TextToImageRequest) and coerced.seed == general.seed and coerced.prompt == "a seven"


def test_the_default_seed_is_random_and_recorded():
    first, second = ImageRequest(count=2), ImageRequest(count=2)
    assert 0 <= first.seed < 2**32 and first.seed != second.seed  # (equal with probability 2**-32)
    assert ImageRequest(count=2, seed=-1).seed >= 0 and ImageRequest(count=2, seed=5).seed == 5
    with pytest.raises(ValueError):
        ImageRequest(count=2, seed=-2)
    batch = aigc.load("dcgan-mnist").generate(first)
    assert batch.seeds == [first.seed, first.seed + 1]


@pytest.mark.parametrize(
    "name, request_",
    [
        ("cgan-mnist", ImageRequest(count=10, seed=3)),  # labels cycle 0..9, resolved before splitting
        ("cgan-mnist", ImageRequest(count=7, seed=3, labels=[1, 2, 3, 4, 5, 6, 7])),
        ("t2i-cgan-mnist", PromptImageRequest(count=5, seed=8, prompt=["a one", "a two", "一个三", "a four", "a four"])),
    ],
)
def test_chunks_give_exactly_the_samples_of_one_call(name, request_):
    model = aigc.load(name)
    whole = model.generate(request_)
    pieces = request_.chunks(3, getattr(model.module, "num_classes", None))
    assert [start for start, _ in pieces] == list(range(0, request_.count, 3))
    parts = [model.generate(piece) for _, piece in pieces]
    assert np.array_equal(np.concatenate([part.images for part in parts]), whole.images)
    assert [file.data for part in parts for file in part.files()] == [file.data for file in whole.files()]


def test_requests_that_are_one_piece_do_not_split():
    walk = DiffusionImageRequest(count=8, seed=0, interpolate=(1, 2))
    beams = TextRequest(count=4, seed=0, num_beams=4)
    assert walk.chunks(2) == [(0, walk)] and beams.chunks(1) == [(0, beams)]
    texts = TextRequest(count=5, seed=10).chunks(2)
    assert [(start, piece.count, piece.seed) for start, piece in texts] == [(0, 2, 10), (2, 2, 12), (4, 1, 14)]


def test_diffusion_reports_each_sampling_step():
    steps = []
    aigc.load("t2i-diffusion-mnist").generate(TextToImageRequest(count=1, seed=0, prompt="a two", sample_steps=4), progress=lambda done, total, preview: steps.append((done, total, preview().shape)))
    assert steps == [(1, 4, (1, 28, 28, 1)), (2, 4, (1, 28, 28, 1)), (3, 4, (1, 28, 28, 1)), (4, 4, (1, 28, 28, 1))]  # previews: the x0 estimates


def test_image_files_are_what_save_each_writes(cgan, tmp_path):
    batch = cgan.generate(ImageRequest(count=2, seed=30, labels=[5]))
    files = batch.files()
    paths = batch.save_each(tmp_path, stem="x")
    assert [path.read_bytes() for path in paths] == [file.data for file in files]
    assert [(f.kind, f.media_type, f.seed, f.label, f.width) for f in files] == [("image", "image/png", 30, 5, 28), ("image", "image/png", 31, 5, 28)]
    assert files[0].record == {"model": "cgan:zoo/cgan-mnist", "seeds": [30], "labels": [5], **batch.parameters}


def test_audio_clips_become_wav_files_that_carry_the_same_metadata(tmp_path):
    rate = 16000
    waves = np.stack([np.sin(np.linspace(0, 200 * (k + 1), rate)).astype(np.float32) * 0.5 for k in range(2)])
    clip = AudioClip(waves, rate, seeds=[3, 4], labels=[7, 7], model="wavegan:zoo/x", parameters={"checkpoint_sha256": "abc", "step": 9})
    files = clip.files()
    assert [(f.kind, f.media_type, f.suffix, f.seed, f.label) for f in files] == [("audio", "audio/wav", ".wav", 3, 7), ("audio", "audio/wav", ".wav", 4, 7)]
    with wave.open(io.BytesIO(files[1].data)) as reader:  # a standard reader accepts it
        assert (reader.getframerate(), reader.getnchannels(), reader.getnframes()) == (rate, 1, rate)
        samples = np.frombuffer(reader.readframes(rate), "<i2") / 32767
    assert np.abs(samples - waves[1]).max() < 1e-4
    info = read_wav_info(files[1].data)
    assert info["model"] == "wavegan:zoo/x" and "Seed: 4" in info["parameters"] and "Model hash: abc" in info["parameters"] and "Sample rate: 16000" in info["parameters"]
    assert json.loads(info["aigc"]) == {"model": "wavegan:zoo/x", "seeds": [4], "labels": [7], "checkpoint_sha256": "abc", "step": 9} == files[1].record
    joined = clip.save(tmp_path / "both.wav")
    with wave.open(str(joined)) as reader:
        assert reader.getnframes() == 2 * rate + int(AudioClip.GAP_SECONDS * rate)
    assert [p.name for p in clip.save_each(tmp_path, stem="d")] == ["d-seed3.wav", "d-seed4.wav"]
    with pytest.raises(ValueError, match="float32"):
        AudioClip(waves.astype(np.float64), rate, [0, 1], None, "m")


def test_loading_refuses_weights_that_are_not_finite(tmp_path):
    from aigc import zoo

    folder = tmp_path / "broken"
    shutil.copytree(zoo.resolve("dcgan-mnist"), folder)
    checkpoint = next(folder.rglob("checkpoint.json")).parent
    tensors = load_file(str(checkpoint / "ema.safetensors"))
    name = next(key for key, tensor in tensors.items() if tensor.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(checkpoint / "ema.safetensors"))
    sidecar = json.loads((checkpoint / "checkpoint.json").read_text())
    sidecar["files"]["ema.safetensors"] = hashlib.sha256((checkpoint / "ema.safetensors").read_bytes()).hexdigest()
    (checkpoint / "checkpoint.json").write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError) as error:
        aigc.load(folder)
    assert "NaN or infinite" in str(error.value) and name in str(error.value) and error.value.field == "weights"

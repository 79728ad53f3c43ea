"""--distill PRESET --steps N: a smaller student of the teacher's modality, trained through the one loop on
the teacher's softened logits (GPT) or images (GAN generator), written as an ordinary run of its own
architecture that shares the teacher's tokenizer."""

from __future__ import annotations

import json

import pytest
import torch

import aigc
from aigc.errors import AigcError
from aigc.generation.text import TextRequest
from aigc.optimize.distill import LogitDistillation
from aigc.optimize.pipeline import distill
from aigc.optimize.report import Settings
from helpers import tiny_run, train_tiny


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    return tiny_run(tmp_path_factory, "gpt", "model.embedding_dim=32", "train.max_steps=20")


def test_a_gpt_student_learns_from_its_teacher_and_is_an_ordinary_smaller_run(gpt_run, tmp_path):
    out = tmp_path / "student"
    result = distill(gpt_run, out, "gpt-tiny", 12, overrides=["model.embedding_dim=8"], settings=Settings(repeats=1, tokens=6))
    teacher, student = aigc.load(gpt_run), aigc.load(out)
    assert student.info.sidecar["transforms"] == [] and student.info.config.model.embedding_dim == 8
    assert student.info.config.model.tokenizer == teacher.info.config.model.tokenizer  # the same token ids
    assert student.info.sidecar["distilled_from"]["steps"] == 12 and student.info.step == 12
    assert result.report["ratios"]["parameters"] > 2
    assert result.report["optimized"]["quality"]["value"] is not None
    assert json.loads((out / "optimize.json").read_text())["optimized"]["transforms"][0].startswith("distilled from")
    assert student.generate(TextRequest(prompt="a", max_tokens=4, seed=1)).token_counts[0] > 0


def test_the_distillation_loss_is_zero_for_a_student_equal_to_its_teacher_at_alpha_one(gpt_run):
    teacher = aigc.load(gpt_run).module
    objective = LogitDistillation(teacher, teacher, temperature=2.0, alpha=1.0)
    inputs = torch.randint(0, teacher.config.vocab_size, (2, 8))
    (_, loss, logs), = list(objective.training_step({"inputs": inputs, "targets": inputs}))
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6) and float(logs["hard"]) > 0  # KL(p || p) = 0


def test_a_gan_generator_student_and_a_student_of_another_modality(tmp_path):
    teacher = train_tiny("dcgan", tmp_path / "gan", "model.image_size=16", "train.max_steps=2").run_dir
    distill(teacher, tmp_path / "small", "dcgan-tiny", 3, overrides=["model.width=4"], measure=False)
    student = aigc.load(tmp_path / "small")
    assert student.info.config.model.image_size == 16 and student.info.config.model.width == 4  # geometry from the teacher
    with pytest.raises(AigcError, match=r"student preset 'gpt-tiny' makes text \(gpt\); the teacher makes image \(dcgan\)") as error:
        distill(teacher, tmp_path / "wrong", "gpt-tiny", 3, measure=False)
    assert error.value.field == "--distill" and "dcgan-tiny" in error.value.fix


@pytest.fixture(scope="module")
def deep_gpt_run(tmp_path_factory):
    return tiny_run(tmp_path_factory, "gpt", "model.embedding_dim=16", "model.num_layers=3", "train.max_steps=5")


def test_a_student_initialised_from_its_teacher_copies_embeddings_and_evenly_spaced_blocks(deep_gpt_run, tmp_path):
    from aigc.loading import build_model
    from aigc.optimize.distill import init_from_teacher, teacher_blocks
    from aigc.optimize.pipeline import student_config

    teacher = aigc.load(deep_gpt_run)
    student = build_model(student_config(teacher, "gpt-tiny", ["model.embedding_dim=16", "model.num_layers=2", "model.mlp_ratio=2"]))
    record = init_from_teacher(student, teacher.module)
    assert record["blocks"] == [0, 2] == teacher_blocks(2, 3) and teacher_blocks(1, 4) == [0] and teacher_blocks(3, 5) == [0, 2, 4]
    source, target = teacher.module.blocks[2], student.blocks[1]
    assert torch.equal(student.token_embedding.weight, teacher.module.token_embedding.weight)
    assert torch.equal(target.attention.qkv.weight, source.attention.qkv.weight)
    rows = [int((source.mlp.fc.weight == row).all(dim=1).nonzero()) for row in target.mlp.fc.weight]  # each kept row is a teacher row
    assert len(set(rows)) == 32 and rows == sorted(rows)
    assert torch.equal(target.mlp.proj.weight, source.mlp.proj.weight[:, rows])  # the same hidden units on both sides
    same = build_model(teacher.info.config)
    init_from_teacher(same, teacher.module)  # as deep and wide as the teacher: the same network
    inputs = torch.randint(0, teacher.info.config.model.vocab_size, (2, 8))
    assert torch.equal(same.eval()(inputs), teacher.module(inputs))

    result = distill(deep_gpt_run, tmp_path / "s", "gpt-tiny", 2, overrides=["model.embedding_dim=16"], student_init="teacher",
                     temperature=1.5, alpha=0.8, measure=False)
    record = aigc.load(result.out).info.sidecar["distilled_from"]
    assert record["init"] == "teacher" and record["blocks"] == [0] and "T=1.5" in record["objective"] and "alpha 0.8" in record["objective"]


@pytest.mark.parametrize("kwargs, field, message", [
    ({"student_init": "copy"}, "--student-init", "unknown student initialisation 'copy'"),
    ({"temperature": 0.0}, "--temperature", "must be a number > 0"),
    ({"alpha": 1.5}, "--alpha", r"lies in \[0, 1\], got 1.5"),
    ({"student_init": "teacher", "overrides": ["model.embedding_dim=8"]}, "--student-init", r"teacher's embedding_dim \(16\), the student has 8"),
    ({"student_init": "teacher", "overrides": ["model.embedding_dim=16", "model.num_layers=4"]}, "--student-init", "no deeper or wider than its teacher"),
])
def test_bad_distillation_settings_are_clear_errors(deep_gpt_run, tmp_path, kwargs, field, message):
    with pytest.raises(AigcError, match=message) as error:
        distill(deep_gpt_run, tmp_path / "bad", "gpt-tiny", 2, measure=False, **kwargs)
    assert error.value.field == field


def test_a_gan_student_cannot_start_from_its_teacher(tmp_path):
    teacher = train_tiny("dcgan", tmp_path / "gan", "model.image_size=16", "train.max_steps=2").run_dir
    with pytest.raises(AigcError, match="--student-init teacher copies GPT blocks") as error:
        distill(teacher, tmp_path / "small", "dcgan-tiny", 2, student_init="teacher", measure=False)
    assert error.value.field == "--student-init" and "random" in error.value.fix

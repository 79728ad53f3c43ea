"""Captioner: image -> text, a CNN encoder and a GRU decoder that attends over the image's regions.

"Show, Attend and Tell" (Xu et al. 2015, https://arxiv.org/abs/1502.03044), sized for a CPU:

    image [B, C, H, W] -> CNN (3 convs) -> feature map [B, F, H/4, W/4] -> regions [B, R, F] -> keys [B, R, A]
    h0 = tanh(W_init mean(regions))                                                      (paper §3.1.2)
    step t: context = sum_r softmax_r(v . tanh(keys_r + W_h h)) regions_r    (additive attention, §4.1)
            h = GRU([embed(y_{t-1}); context], h);  logits = W_out [h; context]
    loss: cross-entropy of each caption token given the ones before (teacher forcing), <pad> ignored

Captions are tokens of the model's own tokenizer (built from the training captions; English words and
Chinese characters). `generate` reads one image (a path or a uint8 array, `CaptionRequest`), fits it to
the model's geometry with the datasets' resize filter, and decodes with beam search (length-normalised
log-probability; one beam = greedy). Train it on `digits-captioning`, `mnist-captioning` or
`fashion-mnist-captioning` (aigc/data/caption_tokens.py).
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from aigc.config import OptimConfig, build_optimizer
from aigc.data.resize import fit_images
from aigc.data.tokenizers import BOS, EOS, PAD, TokenizerSettings, model_tokenizer
from aigc.generation.progress import report_progress
from aigc.generation.requests import CaptionRequest
from aigc.generation.text import TextSample
from aigc.registry import register_model
from aigc.models.sampling import module_device

# ---------------------------------------------------------------------------------------------- config


class CaptionerConfig(TokenizerSettings):
    tokenizer_kind: str = "word"  # English words and single Chinese characters
    image_size: int = Field(28, ge=8)  # images are fitted to image_size x image_size
    channels: int = Field(1, ge=1, le=3)  # 1 (grey) or 3 (RGB)
    width: int = Field(32, ge=4)  # channels of the first conv; the feature map has 2 x width
    embedding_dim: int = Field(64, ge=4)  # caption token embedding
    hidden_size: int = Field(128, ge=4)  # GRU state
    attention_dim: int = Field(64, ge=4)  # additive attention's inner width
    dropout: float = Field(0.1, ge=0, lt=1)  # on embeddings and the output layer's input
    num_classes: int | None = None  # filled in from the dataset (unused by the network; kept for the record)


# -------------------------------------------------------------------------------------------- blocks


class ImageEncoder(nn.Module):
    """A small CNN: [B, C, H, W] -> regions [B, R, F], R = ceil(H/4) x ceil(W/4), F = 2 x width."""

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        width = config.width
        self.body = nn.Sequential(
            nn.Conv2d(config.channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.out_features = 2 * width

    def forward(self, images: Tensor) -> Tensor:
        features = self.body(images)  # [B, F, H/4, W/4]
        return features.flatten(2).transpose(1, 2)  # [B, R, F]


class AdditiveAttention(nn.Module):
    """Bahdanau et al. 2015 (https://arxiv.org/abs/1409.0473): score_r = v . tanh(K_r + W h)."""

    def __init__(self, hidden_size: int, attention_dim: int):
        super().__init__()
        self.query = nn.Linear(hidden_size, attention_dim, bias=False)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, hidden: Tensor, keys: Tensor, regions: Tensor) -> Tensor:
        scores = self.score(torch.tanh(keys + self.query(hidden)[:, None])).squeeze(2)  # [B, R]
        return torch.bmm(scores.softmax(dim=1)[:, None], regions).squeeze(1)  # [B, F]


# --------------------------------------------------------------------------------------------- model


class Captioner(nn.Module):
    request_class = CaptionRequest

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        if config.vocab_size is None:
            raise ValueError("model.vocab_size is filled from the captions: train on a captioning dataset (digits-captioning, mnist-captioning)")
        self.config = config
        self.tokenizer = model_tokenizer(config) if config.tokenizer else None
        self.encoder = ImageEncoder(config)
        features = self.encoder.out_features
        self.keys = nn.Linear(features, config.attention_dim)
        self.init_hidden = nn.Linear(features, config.hidden_size)
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD)
        self.attention = AdditiveAttention(config.hidden_size, config.attention_dim)
        self.cell = nn.GRUCell(config.embedding_dim + features, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size + features, config.vocab_size)

    # A decoding state is (hidden [B, H], regions [B, R, F], keys [B, R, A]).
    def start(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        regions = self.encoder(images)
        return torch.tanh(self.init_hidden(regions.mean(dim=1))), regions, self.keys(regions)

    def step(self, tokens: Tensor, hidden: Tensor, regions: Tensor, keys: Tensor) -> tuple[Tensor, Tensor]:
        """One decoder step: previous tokens [B] -> (logits [B, V], new hidden [B, H])."""
        context = self.attention(hidden, keys, regions)  # [B, F]
        hidden = self.cell(torch.cat([self.dropout(self.embedding(tokens)), context], dim=1), hidden)
        return self.output(self.dropout(torch.cat([hidden, context], dim=1))), hidden

    def forward(self, images: Tensor, captions: Tensor) -> Tensor:
        """Teacher forcing: logits [B, L-1, V] for captions[:, 1:] given captions[:, :-1]."""
        hidden, regions, keys = self.start(images)
        logits = []
        for t in range(captions.shape[1] - 1):
            step_logits, hidden = self.step(captions[:, t], hidden, regions, keys)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        logits = self(batch["images"], batch["captions"])
        return F.cross_entropy(logits.flatten(0, 1), batch["captions"][:, 1:].flatten(), ignore_index=PAD)

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"model": build_optimizer(self.parameters(), optim)}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        yield "model", self.loss(batch), {}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"loss": self.loss(batch)}

    # ---------------------------------------------------------------------------------------- captioning

    def fit_image(self, pixels) -> Tensor:
        """uint8 [H, W, C] -> float [1, C, S, S] in [-1, 1], with the datasets' resize filter and channel conversion."""
        image = torch.tensor(pixels).permute(2, 0, 1)[None].contiguous()  # [1, C, H, W] (a copy: arrays may be read-only)
        if image.shape[1] not in (1, 3):
            image = image[:, :1]
        fitted = fit_images(image, self.config.image_size, self.config.channels)
        return fitted.to(torch.float32).div_(127.5).sub_(1.0).to(self.device)

    @property
    def device(self) -> torch.device:
        return module_device(self)

    @torch.no_grad()
    def beam_search(self, images: Tensor, num_beams: int, max_tokens: int) -> tuple[list[int], float, str]:
        """The best caption of one image [1, C, S, S]: (token ids, mean log-probability, finish reason)."""
        hidden, regions, keys = self.start(images)
        beams = [([BOS], 0.0, hidden[0])]  # (tokens, summed log-probability, hidden)
        finished: list[tuple[list[int], float]] = []
        for length in range(max_tokens):
            report_progress(length, max_tokens)
            tokens = torch.tensor([b[0][-1] for b in beams], device=images.device)
            states = torch.stack([b[2] for b in beams])
            rows = len(beams)
            logits, states = self.step(tokens, states, regions.expand(rows, -1, -1), keys.expand(rows, -1, -1))
            logits[:, PAD] = logits[:, BOS] = float("-inf")  # never emitted
            log_probs = logits.log_softmax(dim=1)  # [rows, V]
            totals = torch.tensor([b[1] for b in beams], device=images.device)[:, None] + log_probs
            best = totals.flatten().topk(min(2 * num_beams, totals.numel()))  # room for beams that end here
            candidates = []
            for score, flat in zip(best.values.tolist(), best.indices.tolist()):
                row, token = divmod(flat, log_probs.shape[1])
                if token == EOS:
                    finished.append((beams[row][0][1:], score / (len(beams[row][0]))))  # length-normalised
                else:
                    candidates.append((beams[row][0] + [token], score, states[row]))
                if len(candidates) == num_beams:
                    break
            beams = candidates
            # Stop once enough captions ended and none still growing scores better per token.
            if not beams or (len(finished) >= num_beams and max(s for _, s in finished) >= max(b[1] / len(b[0]) for b in beams)):
                break
        report_progress(max_tokens, max_tokens)
        if finished:
            ids, score = max(finished, key=lambda item: item[1])
            return ids, score, "eos"
        ids, score, _ = max(beams, key=lambda b: b[1] / len(b[0]))
        return ids[1:], score / len(ids), "length"

    @torch.no_grad()
    def generate(self, request: CaptionRequest) -> TextSample:
        if self.tokenizer is None:
            raise ValueError("this captioner has no tokenizer: train it on a captioning dataset first")
        ids, score, reason = self.beam_search(self.fit_image(request.pixels()), request.num_beams, request.max_tokens)
        return TextSample(
            texts=[self.tokenizer.decode(ids)], prompt="", seeds=[request.seed], token_counts=[len(ids)], finish_reasons=[reason],
            model="captioner", parameters={"num_beams": request.num_beams, "max_tokens": request.max_tokens, "mean_log_probability": round(score, 4)},
        )


register_model(
    "captioner", modality="image-to-text", config=CaptionerConfig,
    description="Image captioning: CNN encoder + attention GRU decoder, beam search (Xu et al. 2015)",
)(Captioner)

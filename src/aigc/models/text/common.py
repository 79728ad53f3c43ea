"""What every text family shares: the tokenizer it carries, the next-token loss and its logs, optimizer
parameter groups, exact evaluation over a whole split, and generation/streaming through
generation/decoding.py. A family file defines its networks and `start_decoding`; everything here is the
same for an RNN, a GPT and a seq2seq model.

Logged numbers (training and validation): `loss` = mean negative log-likelihood per token in nats,
`perplexity` = exp(loss), `bpc` = bits per character = loss / (characters per token) / ln 2, which
compares models with different tokenizers. The loop's validation averages per-batch values over
`train.eval_batches` batches; `evaluate_split` gives the exact figure over a whole split.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aigc.config import OptimConfig, build_optimizer
from aigc.data.tokenizers import TokenizerSettings, model_tokenizer
from aigc.errors import AigcError
from aigc.generation import decoding
from aigc.generation.text import TextRequest, TextSample
from aigc.models.sampling import eval_mode, module_device

PREVIEW_TOKENS = 200  # length of the samples the loop writes during training


def token_losses(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """(sum of NLL over counted targets, number of counted targets); targets of -100 are padding."""
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum")
    return total, (targets != -100).sum()


def loss_logs(loss: Tensor, chars_per_token: Tensor | None) -> dict[str, Tensor]:
    loss = loss.detach()
    logs = {"perplexity": torch.exp(loss.clamp(max=50.0))}
    if chars_per_token is not None:
        logs["bpc"] = loss / chars_per_token.float().mean() / math.log(2)
    return logs


def parameter_groups(model: nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    """Weight decay only on matrices (not on biases, norm scales or other 1-d tensors), as in GPT-2/nanoGPT; other
    settings from OptimConfig. Without weight decay this is plain `build_optimizer`."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    if optim.weight_decay == 0 or optim.name not in ("adam", "adamw"):
        return build_optimizer(parameters, optim)
    decay = [p for p in parameters if p.ndim >= 2]
    no_decay = [p for p in parameters if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kind = torch.optim.AdamW if optim.name == "adamw" else torch.optim.Adam
    return kind(groups, lr=optim.lr, betas=optim.betas, eps=optim.eps)


class TextModel(nn.Module):
    """Base of the text families: carries the tokenizer; generates and streams text."""

    request_class = TextRequest  # what generate() takes (the CLI and the studio build it from user input)
    family_name = "text"

    def __init__(self, config: TokenizerSettings):
        super().__init__()
        self.config = config
        self.tokenizer = model_tokenizer(config)

    # Families implement: start_decoding(prompt_ids, rows, **options) -> (session, logits [rows, vocab])

    def configure_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        return {"model": parameter_groups(self, optim)}

    @property
    def device(self) -> torch.device:
        return module_device(self)

    # ------------------------------------------------------------------------------------------- generation

    def prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer.encode(prompt)

    def _check(self, request: TextRequest) -> None:
        if request.num_beams > 1 and request.count > request.num_beams:
            raise AigcError(
                f"beam search returns at most num_beams={request.num_beams} texts, {request.count} were asked for",
                field="count",
                fix="lower count, or raise num_beams",
            )

    def _sample(self, request: TextRequest, generator: torch.Generator | None, index: int, **options) -> decoding.TextStream:
        ids = self.prompt_ids(request.prompt)
        generator = generator or torch.Generator().manual_seed(request.seed + index)
        return decoding.sample(lambda rows: self.start_decoding(ids, rows, **options), request, self.tokenizer, generator, self.history_ids(ids))

    def history_ids(self, prompt_ids: list[int]) -> list[int]:
        """Tokens the repetition penalty counts before any is generated (a language model's prompt)."""
        return prompt_ids

    @torch.inference_mode()  # lighter than no_grad: generation never needs autograd (faster per token)
    def generate(self, request: TextRequest, generator: torch.Generator | None = None, **options) -> TextSample:
        """Text for a request. Sample i uses seed `request.seed + i` (or, with `generator`, draws from it);
        with num_beams > 1, the `count` best beams. `options` go to the family's decoder (e.g. use_cache)."""
        self._check(request)
        with eval_mode(self):
            if request.num_beams > 1:
                ids = self.prompt_ids(request.prompt)
                results = decoding.beam_search(
                    lambda rows: self.start_decoding(ids, rows, **options), request, self.tokenizer, self.history_ids(ids)
                )
            elif request.count > 1 and generator is None:  # the samples as rows of one batch, seeds unchanged
                ids = self.prompt_ids(request.prompt)
                generators = [torch.Generator().manual_seed(request.seed + i) for i in range(request.count)]
                results = decoding.sample_batch(
                    lambda rows: self.start_decoding(ids, rows, **options), request, self.tokenizer, generators, self.history_ids(ids)
                )
            else:
                results = [self._finish(self._sample(request, generator, i, **options)) for i in range(request.count)]
        return self.text_sample(request, results)

    def text_sample(self, request: TextRequest, results: list[decoding.Decoded]) -> TextSample:
        return TextSample(
            texts=[r.text for r in results],
            prompt=request.prompt,
            seeds=[request.seed + i for i in range(len(results))],
            token_counts=[len(r.token_ids) for r in results],
            finish_reasons=[r.finish_reason for r in results],
            model=self.family_name,
            parameters=request.model_dump(exclude={"prompt"}),
        )

    @staticmethod
    def _finish(stream: decoding.TextStream) -> decoding.Decoded:
        for _ in stream:
            pass
        assert stream.result is not None
        return stream.result

    def stream(self, request: TextRequest, **options) -> "StreamedText":
        """Text pieces of one sampled sequence as they are decided (for `aigc generate --stream` and the
        studio). Iterate it for the pieces; afterwards its `.sample` is the TextSample that
        `generate(request)` returns for the same request (same text)."""
        if request.count != 1 or request.num_beams != 1:
            raise AigcError("streaming makes one sampled text", field="count" if request.count != 1 else "num_beams",
                            fix="use count=1 and num_beams=1, or generate() for several texts or beam search")
        return StreamedText(self, request, options)

    def preview_request(self) -> TextRequest:
        return TextRequest(prompt="", max_tokens=PREVIEW_TOKENS, seed=0, temperature=0.8, count=1)


class LanguageModel(TextModel):
    """A next-token model over windows of text (rnn, lstm, gru, gpt). Families implement `forward(inputs
    [B, T]) -> logits [B, T, vocab]` and `start_decoding`."""

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        logits = self(batch["inputs"])  # [B, T, vocab]
        total, count = token_losses(logits, batch["targets"])
        loss = total / count.clamp(min=1)
        yield "model", loss, loss_logs(loss, batch.get("chars_per_token"))

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        with eval_mode(self):
            logits = self(batch["inputs"])
        total, count = token_losses(logits, batch["targets"])
        loss = total / count.clamp(min=1)
        return {"loss": loss, **loss_logs(loss, batch.get("chars_per_token"))}

    def prompt_ids(self, prompt: str) -> list[int]:
        """The prompt's tokens; an empty prompt starts from a newline (a line start is a natural beginning)."""
        ids = self.tokenizer.encode(prompt) if prompt else []
        return ids or self.tokenizer.encode("\n") or [3]


@torch.no_grad()
def evaluate_split(model: nn.Module, split, batch_size: int = 64) -> dict[str, float]:
    """Exact negative log-likelihood over every target of a validation split (`TokenChunks`): nats per
    token and per character, bits per character and perplexity, with the counts they come from."""
    total, tokens = 0.0, 0
    with eval_mode(model):
        for start in range(0, len(split), batch_size):
            batch = split.get_batch(torch.arange(start, min(start + batch_size, len(split))))
            logits = model(batch["inputs"].to(model.device))
            batch_total, batch_count = token_losses(logits, batch["targets"].to(model.device))
            total += float(batch_total)
            tokens += int(batch_count)
    characters = split.characters
    return {
        "nll_nats": total,
        "tokens": tokens,
        "characters": characters,
        "loss_per_token": total / tokens,
        "nats_per_char": total / characters,
        "bpc": total / characters / math.log(2),
        "perplexity": math.exp(min(total / tokens, 700.0)),
    }


class StreamedText:
    """An iterable of text pieces; `sample` (a TextSample) is set once the iteration has finished."""

    def __init__(self, model: TextModel, request: TextRequest, options: dict):
        self.model, self.request, self.options = model, request, options
        self.sample: TextSample | None = None

    def __iter__(self) -> Iterator[str]:
        with torch.inference_mode(), eval_mode(self.model):
            stream = self.model._sample(self.request, None, 0, **self.options)
            yield from stream
        self.sample = self.model.text_sample(self.request, [stream.result])

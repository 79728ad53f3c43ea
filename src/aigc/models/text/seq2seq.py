"""Sequence-to-sequence models with attention: an RNN encoder-decoder and a Transformer encoder-decoder.

    seq2seq              Bahdanau et al. 2015, https://arxiv.org/abs/1409.0473: a bidirectional GRU/LSTM
                         encoder, a GRU/LSTM decoder with additive attention and input feeding (Luong et al.
                         2015, https://arxiv.org/abs/1508.04025, §3.3)
    transformer-seq2seq  Vaswani et al. 2017, https://arxiv.org/abs/1706.03762, pre-norm layers

Both read a source (token ids + <eos>) and produce a target that starts at <bos> and ends at <eos>.
Training uses teacher forcing (the decoder reads the true previous token); with `scheduled_sampling = p`
each decoder input is, with probability p, the model's own greedy prediction at the previous step
instead (Bengio et al. 2015, https://arxiv.org/abs/1506.03099). Generation uses the shared decoding
(generation/decoding.py); beam search is the usual choice (`num_beams`, e.g. 4).

RNN decoder step t (shapes for a batch of B):
    1. input = [embed(y_{t-1}); context_{t-1}]                       [B, E + 2H]
    2. s_t = cell(input, s_{t-1})                                     [B, H]
    3. e_tj = v^T tanh(W_s s_t + W_h h_j)   (additive score, Bahdanau eq. 6)   [B, S]; <pad> masked to -inf
    4. a_t = softmax(e_t); context_t = sum_j a_tj h_j                 [B, 2H]
    5. logits_t = W_o tanh(W_c [s_t; context_t])                      [B, vocab]
"""

from __future__ import annotations

from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from aigc.data.tokenizers import BOS, EOS, PAD, TokenizerSettings
from aigc.models.layers import sinusoidal_embedding
from aigc.models.text.common import TextModel, loss_logs
from aigc.registry import register_model

# ---------------------------------------------------------------------------------------------- config


class Seq2SeqConfig(TokenizerSettings):
    cell: Literal["gru", "lstm"] = "gru"  # recurrent layer of encoder and decoder
    embedding_dim: int = Field(128, ge=1)  # token embedding size (shared by source and target)
    hidden_size: int = Field(256, ge=1)  # decoder units; each encoder direction has hidden_size // 2
    num_layers: int = Field(1, ge=1)  # encoder layers (the decoder has one)
    attention_dim: int = Field(128, ge=1)  # size of the additive attention's hidden layer
    dropout: float = Field(0.1, ge=0, lt=1)
    max_source_length: int = Field(128, ge=2)  # longer sources keep their last tokens
    max_target_length: int = Field(32, ge=3)  # longer targets keep their first tokens (+ <bos>, <eos>)
    scheduled_sampling: float = Field(0.0, ge=0, le=1)  # probability of feeding the model's own prediction
    tie_weights: bool = True  # output layer = the embedding matrix
    preview_prompt: str | None = None  # a source shown in training previews; filled from the data
    preview_beams: int = Field(4, ge=1)  # beams used for previews

    @model_validator(mode="after")
    def _even_hidden(self) -> "Seq2SeqConfig":
        if self.hidden_size % 2:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be even: each encoder direction has half")
        return self


class TransformerSeq2SeqConfig(TokenizerSettings):
    embedding_dim: int = Field(128, ge=2)  # model width; a multiple of num_heads
    num_heads: int = Field(4, ge=1)
    encoder_layers: int = Field(3, ge=1)
    decoder_layers: int = Field(3, ge=1)
    mlp_ratio: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    max_source_length: int = Field(128, ge=2)
    max_target_length: int = Field(32, ge=3)
    scheduled_sampling: float = Field(0.0, ge=0, le=1)  # two-pass scheduled sampling (Mihaylova & Martins 2019)
    preview_prompt: str | None = None
    preview_beams: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "TransformerSeq2SeqConfig":
        if self.embedding_dim % self.num_heads:
            raise ValueError(f"embedding_dim ({self.embedding_dim}) must be a multiple of num_heads ({self.num_heads})")
        return self


# ------------------------------------------------------------------------------------ shared behaviour


class Seq2SeqModel(TextModel):
    """Teacher-forced training, validation and generation for both architectures. Subclasses implement
    `encode(source) -> memory`, `decode_all(memory, inputs, sample_prob) -> logits`, `start_decoding`."""

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[tuple[str, Tensor, dict[str, Tensor]]]:
        source, target = batch["source"], batch["target"]  # [B, S], [B, U]
        logits = self.decode_all(self.encode(source), target[:, :-1], self.config.scheduled_sampling)  # [B, U-1, V]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1), ignore_index=PAD)
        yield "model", loss, loss_logs(loss, None)

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        was_training = self.training
        self.eval()
        try:
            source, target = batch["source"], batch["target"]
            logits = self.decode_all(self.encode(source), target[:, :-1], 0.0)
        finally:
            self.train(was_training)
        targets = target[:, 1:]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD)
        counted = targets != PAD
        accuracy = ((logits.argmax(-1) == targets) & counted).sum() / counted.sum().clamp(min=1)
        return {"loss": loss, "token_accuracy": accuracy, **loss_logs(loss, None)}

    def source_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text)
        limit = self.config.max_source_length
        return (ids[-(limit - 1) :] if len(ids) >= limit else ids) + [EOS]

    def history_ids(self, prompt_ids: list[int]) -> list[int]:
        return []  # the repetition penalty counts the output only: a reply may reuse the source's words

    def prompt_ids(self, prompt: str) -> list[int]:
        return self.source_ids(prompt)

    def preview_request(self):
        from aigc.generation.text import TextRequest

        return TextRequest(
            prompt=self.config.preview_prompt or "", max_tokens=self.config.max_target_length,
            num_beams=self.config.preview_beams, count=1,
        )


# ---------------------------------------------------------------------------------- RNN with attention


class AdditiveAttention(nn.Module):
    """score(s, h_j) = v^T tanh(W_s s + W_h h_j)  (Bahdanau et al. 2015, eq. 6 and appendix A.1.2)."""

    def __init__(self, query_size: int, key_size: int, attention_dim: int):
        super().__init__()
        self.query = nn.Linear(query_size, attention_dim, bias=False)
        self.key = nn.Linear(key_size, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def project_keys(self, memory: Tensor) -> Tensor:
        return self.key(memory)  # [B, S, A], once per source

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.score(torch.tanh(self.query(query)[:, None] + keys)).squeeze(-1)  # [B, S]
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)  # [B, S]
        return torch.bmm(weights[:, None], memory).squeeze(1), weights  # context [B, 2H]


class Memory:
    """What the decoder needs from the encoder, per row: outputs, projected keys, mask, and the state."""

    def __init__(self, outputs: Tensor, keys: Tensor, mask: Tensor, state, context: Tensor):
        self.outputs, self.keys, self.mask, self.state, self.context = outputs, keys, mask, state, context

    def select(self, rows: Tensor) -> "Memory":
        state = tuple(s.index_select(0, rows) for s in self.state) if isinstance(self.state, tuple) else self.state.index_select(0, rows)
        return Memory(self.outputs.index_select(0, rows), self.keys.index_select(0, rows), self.mask.index_select(0, rows),
                      state, self.context.index_select(0, rows))


class RNNSeq2Seq(Seq2SeqModel):
    family_name = "seq2seq"

    def __init__(self, config: Seq2SeqConfig):
        super().__init__(config)
        vocab, embed, hidden = config.vocab_size, config.embedding_dim, config.hidden_size
        self.embedding = nn.Embedding(vocab, embed, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.GRU if config.cell == "gru" else nn.LSTM
        self.encoder = layer(embed, hidden // 2, num_layers=config.num_layers, batch_first=True, bidirectional=True,
                             dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.bridge = nn.Linear(hidden, hidden)  # last encoder states (both directions) -> first decoder state
        cell = nn.GRUCell if config.cell == "gru" else nn.LSTMCell
        self.decoder = cell(embed + hidden, hidden)  # input feeding: previous context joins the embedding
        self.attention = AdditiveAttention(hidden, hidden, config.attention_dim)
        self.combine = nn.Linear(2 * hidden, embed)
        self.output = nn.Linear(embed, vocab)
        if config.tie_weights:
            self.output.weight = self.embedding.weight
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)  # small, so the tied output starts near uniform
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        nn.init.zeros_(self.output.bias)

    def encode(self, source: Tensor) -> Memory:
        mask = source != PAD  # [B, S]
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.dropout(self.embedding(source)), lengths, batch_first=True, enforce_sorted=False)
        outputs, final = self.encoder(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=source.shape[1])  # [B, S, H]
        last = final[0] if isinstance(final, tuple) else final  # [layers * 2, B, H/2]
        start = torch.tanh(self.bridge(torch.cat([last[-2], last[-1]], dim=-1)))  # forward and backward top layer
        state = (start, torch.zeros_like(start)) if self.config.cell == "lstm" else start
        context = torch.zeros(source.shape[0], self.config.hidden_size, device=source.device)
        return Memory(outputs, self.attention.project_keys(outputs), mask, state, context)

    def step(self, tokens: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """One decoder step for every row: previous tokens [B] -> logits [B, vocab] (steps 1-5 above)."""
        inputs = torch.cat([self.dropout(self.embedding(tokens)), memory.context], dim=-1)  # 1.
        state = self.decoder(inputs, memory.state)  # 2.
        query = state[0] if isinstance(state, tuple) else state
        context, _ = self.attention(query, memory.keys, memory.outputs, memory.mask)  # 3. 4.
        hidden = torch.tanh(self.combine(self.dropout(torch.cat([query, context], dim=-1))))
        logits = self.output(hidden)  # 5.
        return logits, Memory(memory.outputs, memory.keys, memory.mask, state, context)

    def decode_all(self, memory: Memory, inputs: Tensor, sample_prob: float) -> Tensor:
        """Teacher forcing over inputs [B, U] (<bos> y_1 ...), optionally with scheduled sampling."""
        steps = []
        token = inputs[:, 0]
        for t in range(inputs.shape[1]):
            if t > 0:
                token = inputs[:, t]
                if sample_prob > 0 and self.training:
                    own = steps[-1].argmax(dim=-1)
                    use_own = torch.rand(token.shape, device=token.device) < sample_prob
                    token = torch.where(use_own & (token != PAD), own, token)
            logits, memory = self.step(token, memory)
            steps.append(logits)
        return torch.stack(steps, dim=1)  # [B, U, vocab]

    def start_decoding(self, prompt_ids: list[int], rows: int) -> tuple["RNNSeq2SeqSession", Tensor]:
        source = torch.tensor([prompt_ids], device=self.device)
        memory = self.encode(source).select(torch.zeros(rows, dtype=torch.long, device=self.device))
        session = RNNSeq2SeqSession(self, memory)
        return session, session.advance(torch.full((rows,), BOS))


class RNNSeq2SeqSession:
    def __init__(self, model: RNNSeq2Seq, memory: Memory):
        self.model, self.memory = model, memory

    def advance(self, tokens: Tensor) -> Tensor:
        logits, self.memory = self.model.step(tokens.to(self.model.device), self.memory)
        return logits.float()

    def reorder(self, rows: Tensor) -> None:
        self.memory = self.memory.select(rows.to(self.model.device))


# ------------------------------------------------------------------------------ Transformer seq2seq


class TransformerSeq2Seq(Seq2SeqModel):
    family_name = "transformer-seq2seq"

    def __init__(self, config: TransformerSeq2SeqConfig):
        super().__init__(config)
        width = config.embedding_dim
        self.embedding = nn.Embedding(config.vocab_size, width, padding_idx=PAD)
        length = max(config.max_source_length, config.max_target_length)
        self.register_buffer("positions", sinusoidal_embedding(torch.arange(length), width, interleave=True), persistent=False)
        self.dropout = nn.Dropout(config.dropout)

        def layer(kind):
            return kind(width, config.num_heads, config.mlp_ratio * width, config.dropout, activation="gelu",
                        batch_first=True, norm_first=True)

        self.encoder = nn.TransformerEncoder(layer(nn.TransformerEncoderLayer), config.encoder_layers,
                                             norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(layer(nn.TransformerDecoderLayer), config.decoder_layers, norm=nn.LayerNorm(width))
        self.output = nn.Linear(width, config.vocab_size, bias=False)
        self.output.weight = self.embedding.weight
        nn.init.normal_(self.embedding.weight, 0.0, width**-0.5)  # so that scale * embedding has unit variance
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        self.scale = width**0.5  # embeddings are scaled by sqrt(d) next to the positions (Vaswani et al., §3.4)

    def _embed(self, tokens: Tensor) -> Tensor:
        return self.dropout(self.embedding(tokens) * self.scale + self.positions[: tokens.shape[1]])

    def encode(self, source: Tensor) -> tuple[Tensor, Tensor]:
        padding = source == PAD  # [B, S], True = ignore
        return self.encoder(self._embed(source), src_key_padding_mask=padding), padding

    def decode_all(self, memory: tuple[Tensor, Tensor], inputs: Tensor, sample_prob: float) -> Tensor:
        encoded, padding = memory
        length = inputs.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=inputs.device).triu(1)  # True = may not attend
        if sample_prob > 0 and self.training:
            # Two passes: predict with teacher forcing, then mix those predictions into the inputs.
            with torch.no_grad():
                first = self.decoder(self._embed(inputs), encoded, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=padding)
                own = torch.cat([inputs[:, :1], self.output(first)[:, :-1].argmax(-1)], dim=1)
            use_own = (torch.rand(inputs.shape, device=inputs.device) < sample_prob) & (inputs != PAD)
            use_own[:, 0] = False
            inputs = torch.where(use_own, own, inputs)
        hidden = self.decoder(self._embed(inputs), encoded, tgt_mask=causal, tgt_is_causal=True,
                              memory_key_padding_mask=padding, tgt_key_padding_mask=inputs == PAD)
        return self.output(hidden)

    def start_decoding(self, prompt_ids: list[int], rows: int) -> tuple["TransformerSeq2SeqSession", Tensor]:
        encoded, padding = self.encode(torch.tensor([prompt_ids], device=self.device))
        index = torch.zeros(rows, dtype=torch.long, device=self.device)
        session = TransformerSeq2SeqSession(self, encoded.index_select(0, index), padding.index_select(0, index))
        return session, session.advance(torch.full((rows,), BOS))


class TransformerSeq2SeqSession:
    """Targets are short (max_target_length), so each step re-runs the decoder over the target so far."""

    def __init__(self, model: TransformerSeq2Seq, encoded: Tensor, padding: Tensor):
        self.model, self.encoded, self.padding = model, encoded, padding
        self.tokens = torch.zeros(encoded.shape[0], 0, dtype=torch.long, device=encoded.device)

    def advance(self, tokens: Tensor) -> Tensor:
        self.tokens = torch.cat([self.tokens, tokens.to(self.tokens.device).view(-1, 1)], dim=1)
        if self.tokens.shape[1] > self.model.positions.shape[0]:
            self.tokens = self.tokens[:, -self.model.positions.shape[0] :]
        return self.model.decode_all((self.encoded, self.padding), self.tokens, 0.0)[:, -1].float()

    def reorder(self, rows: Tensor) -> None:
        rows = rows.to(self.tokens.device)
        self.tokens, self.encoded, self.padding = (t.index_select(0, rows) for t in (self.tokens, self.encoded, self.padding))


register_model("seq2seq", modality="text", config=Seq2SeqConfig,
               description="GRU/LSTM encoder-decoder with additive attention (Bahdanau et al. 2015)")(RNNSeq2Seq)
register_model("transformer-seq2seq", modality="text", config=TransformerSeq2SeqConfig,
               description="Transformer encoder-decoder (Vaswani et al. 2017)")(TransformerSeq2Seq)

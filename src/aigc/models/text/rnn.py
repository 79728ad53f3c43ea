"""Recurrent language models: Elman RNN, LSTM and GRU in one file.

    rnn   Elman 1990; as a character model, Karpathy 2015 ("The Unreasonable Effectiveness of RNNs")
    lstm  Hochreiter & Schmidhuber 1997, https://doi.org/10.1162/neco.1997.9.8.1735
    gru   Cho et al. 2014, https://arxiv.org/abs/1406.1078

token ids [B, T] -> embedding [B, T, E] -> dropout -> stacked recurrent layers (dropout between them)
-> [B, T, H] -> dropout -> (projection to E when tied and H != E) -> output layer -> logits [B, T, vocab]

Weight tying (Press & Wolf 2017, https://arxiv.org/abs/1608.05859; Inan et al. 2017) shares the output
matrix with the embedding. Training uses truncated back-propagation through time: every window of
`context_length` tokens starts from a zero state. Generation carries the recurrent state from token to
token, so each new token costs one step whatever the length (the RNN's own "cache").
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from aigc.data.tokenizers import TokenizerSettings
from aigc.models.text.common import LanguageModel
from aigc.registry import register_variant

# ---------------------------------------------------------------------------------------------- config


class RNNConfig(TokenizerSettings):
    cell: Literal["rnn", "lstm", "gru"] = "lstm"  # the recurrent layer
    context_length: int = Field(128, ge=2)  # tokens per training window (truncated BPTT length)
    embedding_dim: int = Field(128, ge=1)  # size of a token's embedding
    hidden_size: int = Field(256, ge=1)  # units per recurrent layer
    num_layers: int = Field(2, ge=1)  # stacked recurrent layers
    dropout: float = Field(0.1, ge=0, lt=1)  # on embeddings, between layers and before the output layer
    tie_weights: bool = True  # output layer = embedding matrix (a projection bridges hidden_size != embedding_dim)


class LSTMConfig(RNNConfig):
    cell: Literal["rnn", "lstm", "gru"] = "lstm"


class GRUConfig(RNNConfig):
    cell: Literal["rnn", "lstm", "gru"] = "gru"


class ElmanConfig(RNNConfig):
    cell: Literal["rnn", "lstm", "gru"] = "rnn"


_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

# --------------------------------------------------------------------------------------------- model


class RecurrentSession:
    """Decoding state: the recurrent state of each row (h, or (h, c) for an LSTM: [layers, rows, H])."""

    def __init__(self, model: "RecurrentLanguageModel", state):
        self.model, self.state = model, state

    def advance(self, tokens: Tensor) -> Tensor:
        logits, self.state = self.model.step(tokens.to(self.model.device).view(-1, 1), self.state)
        return logits[:, -1].float()

    def reorder(self, rows: Tensor) -> None:
        rows = rows.to(self.model.device)
        if isinstance(self.state, tuple):
            self.state = tuple(part.index_select(1, rows) for part in self.state)
        else:
            self.state = self.state.index_select(1, rows)


class RecurrentLanguageModel(LanguageModel):
    def __init__(self, config: RNNConfig):
        super().__init__(config)
        vocab = config.vocab_size
        self.embedding = nn.Embedding(vocab, config.embedding_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.recurrent = _LAYERS[config.cell](
            config.embedding_dim, config.hidden_size, num_layers=config.num_layers, batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        bridge = config.tie_weights and config.hidden_size != config.embedding_dim
        self.projection = nn.Linear(config.hidden_size, config.embedding_dim) if bridge else None
        self.output = nn.Linear(config.embedding_dim if config.tie_weights else config.hidden_size, vocab)
        if config.tie_weights:
            self.output.weight = self.embedding.weight  # [vocab, E], one matrix
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.output.bias)

    def step(self, inputs: Tensor, state=None) -> tuple[Tensor, object]:
        """inputs [B, T] -> (logits [B, T, vocab], new state)."""
        hidden, state = self.recurrent(self.dropout(self.embedding(inputs)), state)  # [B, T, H]
        hidden = self.dropout(hidden)
        if self.projection is not None:
            hidden = self.projection(hidden)  # [B, T, E]
        return self.output(hidden), state

    def forward(self, inputs: Tensor) -> Tensor:
        return self.step(inputs)[0]

    def start_decoding(self, prompt_ids: list[int], rows: int) -> tuple[RecurrentSession, Tensor]:
        prompt = torch.tensor([prompt_ids] * rows, device=self.device)  # [rows, P]
        logits, state = self.step(prompt)
        return RecurrentSession(self, state), logits[:, -1].float()


register_variant("rnn", RecurrentLanguageModel, modality="text", config=ElmanConfig, description="Elman RNN language model (tanh recurrence)")
register_variant("lstm", RecurrentLanguageModel, modality="text", config=LSTMConfig, description="LSTM language model (Hochreiter & Schmidhuber 1997)")
register_variant("gru", RecurrentLanguageModel, modality="text", config=GRUConfig, description="GRU language model (Cho et al. 2014)")

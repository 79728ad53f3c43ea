"""Text model families: recurrent language models (rnn.py), GPT (transformer.py) and seq2seq with attention
(seq2seq.py), and what they share (common.py). Their tokenizers live below them, in `aigc.data.tokenizers`,
because the data loaders build them from the training text.

Importing `aigc.models` registers them.
"""

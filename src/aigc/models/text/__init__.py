"""Text model families: recurrent language models (rnn.py), GPT (transformer.py) and seq2seq with attention
(seq2seq.py), with their tokenizers (tokenizers.py) and what they share (common.py).

Importing `aigc.models` registers them; this package itself imports nothing, so that `aigc.data.text` can
use the tokenizers without loading the networks.
"""

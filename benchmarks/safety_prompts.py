"""The labelled prompts that measure moderation (benchmarks/safety_moderation.py, tests/test_safety_moderation.py).

Written for this project, apart from the lexicon's examples (none of these is a lexicon example), so the
semantic check is measured on paraphrases it has not seen. Each harmful prompt is labelled with its
category; benign prompts (None) include the hard cases that naive filters block (a kitchen knife, a child
in a park, the bomb emoji). `evasions(text, language)` makes disguised variants of a prompt.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

# The prompts are data (safety_prompts.toml); this module names them and makes their evasions.
with open(Path(__file__).with_name("safety_prompts.toml"), "rb") as _file:
    _PROMPTS = tomllib.load(_file)
HARMFUL: dict[str, dict[str, list[str]]] = _PROMPTS["harmful"]  # category -> language -> prompts
BENIGN: dict[str, list[str]] = _PROMPTS["benign"]  # language -> prompts

_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
_HOMOGLYPH = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і"})  # Cyrillic look-alikes
_TRADITIONAL = str.maketrans("体杀枪弹制尸斩头儿残种灭绝纳传换脸伪证号码药军秽爱属学岁强奸买卖开门国义猪结轻伤们这个张图画",
                             "體殺槍彈製屍斬頭兒殘種滅絕納傳換臉偽證號碼藥軍穢愛屬學歲強姦買賣開門國義豬結輕傷們這個張圖畫")


def _longest_word(text: str) -> str:
    return max(text.split(), key=len)


def evasions(text: str, language: str) -> dict[str, str]:
    """Disguised variants of a prompt: each one way of hiding its key word(s) from a plain filter."""
    if language == "zh":
        return {
            "traditional": text.translate(_TRADITIONAL),
            "spaced": " ".join(text),
            "punctuated": "·".join(text),
            "full-width": text.replace("", "\u3000").strip(),
        }
    word = _longest_word(text)
    replace = lambda new: text.replace(word, new, 1)  # noqa: E731
    return {
        "leetspeak": replace(word.translate(_LEET)),
        "spaced": replace(" ".join(word)),
        "punctuated": replace(".".join(word)),
        "full-width": "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text),
        "homoglyph": replace(word.translate(_HOMOGLYPH)),
        "mixed-case": text.swapcase(),
    }

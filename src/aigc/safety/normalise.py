"""Text normalisation against evasion, so that one plain term matches its disguised spellings.

    normalise("Ｎ.Ｕ.Ｄ.Ｅ  ph0t0 of a kïd")   ->  words ["nude", "photo", "of", "a", "kid"]
    normalise("裸 體")                          ->  cjk "裸体"

Steps, in order (each one undoes one way of hiding a word):
    1. NFKC           full-width and compatibility forms -> plain ones ("ｎｕｄｅ" -> "nude", "①" -> "1")
    2. casefold       "NuDe" -> "nude"; accents dropped ("kïd" -> "kid")
    3. homoglyphs     Cyrillic and Greek look-alikes -> Latin ("nudе" with a Cyrillic е -> "nude")
    4. traditional -> simplified Chinese, for the characters of the lexicon (a small table, not OpenCC)
    5. leetspeak      inside a word that has a letter: 0->o 1->i 3->e 4->a 5->s 7->t 8->b @->a $->s !->i |->i
    6. punctuation inside a word is dropped ("n.u.d.e", "n-u-d-e" -> "nude"), and runs of single letters
                      are joined ("n u d e" -> "nude"; a leading "a" or "i" stays a word: "a n u d e" -> "a nude")
    7. the "skeleton" maps l -> i, so that "1" (read as i or l) and "|" match either letter

Terms go through the same steps, so matching compares like with like. Chinese has no spaces: its text is
compared with every non-Chinese character removed ("裸 体", "裸.体" -> "裸体").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ϲ": "c", "ω": "w",
    # others that NFKC keeps apart
    "ı": "i", "ł": "l", "ø": "o", "ß": "ss", "æ": "ae", "œ": "oe",
})

# Traditional -> simplified for the characters the lexicon uses (and a few common ones around them).
TRADITIONAL = str.maketrans(
    "體殺槍彈製屍斬頭兒殘種滅絕納傳換臉偽僞證號碼電話藥軍穢愛屬學歲強姦襲擊買賣隻開門國義豬弔結輕傷們這個張圖畫貓"
    "腦圓當時後來與對說視顆車飛機鳥魚馬龍鳳風雲書畫齊廣際獨發髮裏裡麼嗎為條劍殺戮淚歡樂紅綠藍黃黑錢銀鐵",
    "体杀枪弹制尸斩头儿残种灭绝纳传换脸伪伪证号码电话药军秽爱属学岁强奸袭击买卖只开门国义猪吊结轻伤们这个张图画猫"
    "脑圆当时后来与对说视颗车飞机鸟鱼马龙凤风云书画齐广际独发发里里么吗为条剑杀戮泪欢乐红绿蓝黄黑钱银铁",
)

LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i", "|": "i"})
SKELETON = str.maketrans({"l": "i"})


def is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf" or "\uf900" <= char <= "\ufaff"


@dataclass(frozen=True)
class Normalised:
    words: tuple[str, ...]  # Latin-script words, normalised (steps 1-7)
    spans: tuple[tuple[int, int], ...]  # where each word came from in the original text (for evidence)
    cjk: str  # the Chinese characters alone, normalised, in order
    cjk_positions: tuple[int, ...]  # index in the original text of each character of `cjk`


def _fold(text: str) -> str:
    """Steps 1-4 for one character sequence; same length is not guaranteed (NFKC, ß)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return text.translate(HOMOGLYPHS).translate(TRADITIONAL)


def _word(token: str, skeleton: bool = True) -> str:
    """Steps 5-7 (5-6 without `skeleton`) for one folded token (no spaces, no Chinese)."""
    token = token.strip("\"'()[]{}<>,.;:?!*_-~`")  # punctuation around a word is not part of it
    if any(c.isalpha() for c in token):
        token = token.translate(LEET)
    token = "".join(c for c in token if c.isalnum())
    return token.translate(SKELETON) if skeleton else token


def normalise(text: str, skeleton: bool = True) -> Normalised:
    """`text` as normalised words and Chinese characters (module docstring); `skeleton=False` leaves out
    step 7, for text that a sentence encoder reads (readable())."""
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    cjk: list[str] = []
    positions: list[int] = []
    # Split into runs of non-space, non-Chinese characters (Latin-ish tokens); collect Chinese apart.
    for match in re.finditer(r"[^\s]+", text):
        start = match.start()
        token_start = None
        for offset, char in enumerate(match.group() + " "):
            folded = _fold(char) if char != " " else " "
            if folded and all(is_cjk(c) for c in folded) or char == " ":
                if token_start is not None:
                    word = _word(_fold(text[token_start : start + offset]), skeleton)
                    if word:
                        words.append(word)
                        spans.append((token_start, start + offset))
                    token_start = None
                if char != " ":
                    cjk.append(folded)
                    positions.append(start + offset)
            elif token_start is None:
                token_start = start + offset
    # Runs of two or more single letters are one spelled-out word: "n u d e" -> "nude".
    joined_words: list[str] = []
    joined_spans: list[tuple[int, int]] = []
    index = 0
    while index < len(words):
        end = index
        while end < len(words) and len(words[end]) == 1 and words[end].isalpha():
            end += 1
        if end - index >= 3 and words[index] in ("a", "i"):  # "a n u d e": the article stays a word
            joined_words.append(words[index])
            joined_spans.append(spans[index])
            index += 1
        if end - index >= 2:
            joined_words.append("".join(words[index:end]))
            joined_spans.append((spans[index][0], spans[end - 1][1]))
            index = end
        else:
            joined_words.append(words[index])
            joined_spans.append(spans[index])
            index += 1
    return Normalised(tuple(joined_words), tuple(joined_spans), "".join(cjk), tuple(positions))


def normalise_term(term: str) -> tuple[tuple[str, ...], str]:
    """A lexicon term as (normalised words, normalised Chinese): one of the two is empty."""
    result = normalise(term)
    return result.words, result.cjk


def readable(text: str) -> str:
    """The text with its disguises undone but still words (steps 1-6, Chinese kept in place and closed up):
    what the semantic check encodes, since "NUDE", "ｎｕｄｅ" and "n.u.d.e" should all read as "nude"."""
    result = normalise(text, skeleton=False)
    items = [(start, word) for (start, _), word in zip(result.spans, result.words)]
    items += list(zip(result.cjk_positions, result.cjk))
    items.sort()
    pieces: list[str] = []
    for index, (_, piece) in enumerate(items):
        if index and not (is_cjk(piece[0]) and is_cjk(pieces[-1][-1])):
            pieces.append(" ")
        pieces.append(piece)
    return "".join(pieces)

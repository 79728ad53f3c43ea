"""Prompt moderation that explains itself, in English and Chinese.

    decision = moderate("a photo of a n.u.d.e woman")
    decision.action        -> "warn"
    decision.findings[0]   -> Finding(category="sexual", action="warn", method="term", evidence="n.u.d.e",
                                      matched="nude", score=1.0, threshold=1.0)

A prompt is checked three ways, each category by each way, after normalisation against evasion
(safety/normalise.py):
    1. terms     the category's words and phrases (safety/lexicon.toml, plus the policy's extra_terms), and
                 combinations ("all_of": a minor AND a sexual term make `minors_sexual`)
    2. patterns  personal data found by aigc.safety.privacy (e-mail, phones, IDs and cards with checksums)
    3. semantic  cosine similarity, with the project's multilingual sentence encoder (aigc.prompts), to the
                 category's example prompts; it counts when it reaches the category's threshold AND beats the
                 nearest harmless example (lexicon [benign]), so "a kitchen knife" is not "a man stabbed"
Each finding carries its category, action, method, evidence (the text as written, or the nearest example),
score and threshold; the decision's action is the strongest of them (block > warn > allow). The policy
(safety/policy.toml, or a file the user names) sets each category's action and threshold.
"""

from __future__ import annotations

import functools
import re
import tomllib
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from aigc.errors import AigcError, AigcWarning
from aigc.safety.normalise import Normalised, normalise, normalise_term, readable

ACTIONS = ("block", "warn", "allow")
SEVERITY = {"block": 2, "warn": 1, "allow": 0}
PACKAGE_DIR = Path(__file__).parent
DEFAULT_POLICY = PACKAGE_DIR / "policy.toml"
LEXICON = PACKAGE_DIR / "lexicon.toml"
SEMANTIC_ENCODER = "use-multilingual"
CHINESE_NUMERALS = set("零一二两三四五六七八九十百千")


# ------------------------------------------------------------------------------------------ decisions


@dataclass(frozen=True)
class Finding:
    category: str
    action: str  # what the policy does for this category: block | warn
    method: str  # "term", "combination", "pattern" or "semantic"
    evidence: str  # the text as written in the prompt, or (semantic) the nearest example
    matched: str  # the lexicon term / pattern kind / example it matched
    score: float  # 1.0 for a term or pattern; the cosine similarity for the semantic check
    threshold: float  # the score at which this method fires for this category

    def explain(self) -> str:
        head = f"{self.category} ({self.action})"
        if self.method == "semantic":
            return f"{head}: close to the example {self.matched!r} (similarity {self.score:.2f} >= threshold {self.threshold:.2f})"
        if self.method == "pattern":
            return f"{head}: {self.matched} {self.evidence!r}"
        noun = "terms" if self.method == "combination" else "term"
        read_as = "" if _plain(self.evidence) == _plain(self.matched) else f", read as {self.matched!r}"
        return f"{head}: the {noun} {self.evidence!r}{read_as}"


def _plain(text: str) -> str:
    return text.casefold().replace(" + ", "+")


@dataclass(frozen=True)
class Decision:
    action: str  # the strongest action of the findings; "allow" when there are none
    findings: tuple[Finding, ...] = ()  # strongest first
    text: str = ""

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def explain(self) -> str:
        if not self.findings:
            return "allowed: no category matched"
        return "; ".join(finding.explain() for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "findings": [asdict(f) for f in self.findings]}


class ModerationError(AigcError):
    """A prompt refused by the moderation policy; carries the decision and its strongest finding."""

    def __init__(self, decision: Decision, field: str = "prompt"):
        top = decision.top
        assert top is not None
        self.decision = decision
        self.category, self.action, self.evidence, self.score, self.threshold = top.category, top.action, top.evidence, top.score, top.threshold
        super().__init__(f"refused by the moderation policy: {decision.explain()}", field=field,
                         fix="change the prompt; if this is a mistake, raise the category's threshold, add the word to its "
                             "ignore_terms or set its action in your policy file (AIGC_SAFETY_POLICY)")


# ------------------------------------------------------------------------------------------ the policy


@dataclass(frozen=True)
class CategoryRule:
    name: str
    description: str
    action: str
    threshold: float  # semantic similarity at which the category fires
    terms: tuple[str, ...]
    all_of: tuple[tuple[str, ...], ...]  # term groups that must all match
    examples: tuple[str, ...]
    ignore_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    categories: tuple[CategoryRule, ...]
    benign_examples: tuple[str, ...]
    semantic: bool = True
    source: str = "packaged"

    def category(self, name: str) -> CategoryRule:
        for rule in self.categories:
            if rule.name == name:
                return rule
        raise AigcError(f"unknown category {name!r}", field="category", fix="use one of: " + ", ".join(r.name for r in self.categories))


def _toml_error(path: Path, error: tomllib.TOMLDecodeError) -> AigcError:
    line = re.search(r"line (\d+)", str(error))
    where = f"{path}:{line.group(1)}" if line else str(path)
    return AigcError(f"not valid TOML: {error}", field=where, fix="fix the line (strings in double quotes, lists in [ ], one key = value per line)")


def _line_of(text: str, table: str, key: str | None = None) -> int | None:
    """The line (1-based) of `[table]` or of `key` inside it, to name in an error."""
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"\[\s*([^\]]+?)\s*\]", stripped)
        if header and not stripped.startswith("[["):
            current = header.group(1).replace('"', "")
            if key is None and current == table:
                return number
        elif key is not None and current == table and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


def _where(path: Path, text: str, table: str, key: str | None = None) -> str:
    line = _line_of(text, table, key)
    return f"{path}:{line}" if line else str(path)


@functools.lru_cache(maxsize=1)
def _lexicon() -> dict[str, Any]:
    return tomllib.loads(LEXICON.read_text(encoding="utf-8"))


def _strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise AigcError(f"{name} must be a list of non-empty strings", field=where, fix=f'e.g. {name} = ["a phrase", "一个词"]')
    return tuple(value)


def load_policy(path: str | Path | None = None) -> Policy:
    """The moderation policy in `path` (default: the packaged policy.toml), checked line by line."""
    path = Path(path) if path is not None else DEFAULT_POLICY
    if not path.is_file():
        raise AigcError(f"{path} is not a file", field="policy", fix=f"give a policy TOML file; start from a copy of {DEFAULT_POLICY}")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise AigcError(f"{path} is empty", field=f"{path}:1", fix=f"start from a copy of {DEFAULT_POLICY}")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _toml_error(path, error) from None
    unknown_tables = sorted(set(raw) - {"semantic", "categories"})
    if unknown_tables:
        raise AigcError(f"unknown table [{unknown_tables[0]}]", field=_where(path, text, unknown_tables[0]), fix="the policy has [semantic] and [categories.NAME] tables only")
    semantic = raw.get("semantic", {})
    enabled = semantic.get("enabled", True)
    if not isinstance(enabled, bool) or set(semantic) - {"enabled"}:
        raise AigcError("[semantic] takes enabled = true or false", field=_where(path, text, "semantic", "enabled") if not isinstance(enabled, bool) else _where(path, text, "semantic"), fix="write enabled = true")
    lexicon = _lexicon()
    known = lexicon["categories"]
    given = raw.get("categories", {})
    for name in given:
        if name not in known:
            raise AigcError(f"unknown category {name!r}", field=_where(path, text, f"categories.{name}"), fix="use one of: " + ", ".join(known))
    rules = []
    for name, entry in known.items():
        settings = given.get(name, {})
        table = f"categories.{name}"
        extra = set(settings) - {"action", "threshold", "extra_terms", "extra_examples", "ignore_terms"}
        if extra:
            key = sorted(extra)[0]
            raise AigcError(f"unknown setting {key!r} in [{table}]", field=_where(path, text, table, key), fix="use action, threshold, extra_terms, extra_examples or ignore_terms")
        action = settings.get("action", entry["default"])
        if action not in ACTIONS:
            raise AigcError(f"action {action!r} is not one of {', '.join(ACTIONS)}", field=_where(path, text, table, "action"), fix='write action = "block", "warn" or "allow"')
        threshold = settings.get("threshold", 0.62)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
            raise AigcError(f"threshold {threshold!r} is not a number in (0, 1]", field=_where(path, text, table, "threshold"), fix="e.g. threshold = 0.62 (higher: fewer prompts flagged)")
        terms = tuple(entry["terms"]) + _strings(settings.get("extra_terms", []), _where(path, text, table, "extra_terms"), "extra_terms")
        examples = tuple(entry["examples"]) + _strings(settings.get("extra_examples", []), _where(path, text, table, "extra_examples"), "extra_examples")
        ignore = _strings(settings.get("ignore_terms", []), _where(path, text, table, "ignore_terms"), "ignore_terms")
        groups = tuple(tuple(lexicon["groups"][group]) for group in entry.get("all_of", []))
        rules.append(CategoryRule(name, entry["description"], action, float(threshold), terms, groups, examples, ignore))
    return Policy(tuple(rules), tuple(lexicon["benign"]["examples"]), enabled, str(path))


# ------------------------------------------------------------------------------------------ term matching


class TermMatcher:
    """Finds normalised terms in normalised text: Latin terms as whole words in order (a plural -s/-es
    counts), Chinese terms anywhere in the Chinese characters."""

    def __init__(self, terms: Iterable[str], ignore: Iterable[str] = ()):
        ignored = {normalise_term(t) for t in ignore}
        self.words: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        self.cjk: list[tuple[str, str]] = []
        for term in terms:
            words, cjk = normalise_term(term)
            if (words, cjk) in ignored:
                continue
            if words:
                self.words.setdefault(words[0], []).append((words, term))
            if cjk:
                self.cjk.append((cjk, term))

    @staticmethod
    def _same(word: str, term_word: str) -> bool:
        return word == term_word or word == term_word + "s" or word == term_word + "es"

    def find(self, text: str, normalised: Normalised) -> list[tuple[str, str]]:
        """(evidence as written, term) for each match."""
        found = []
        words = normalised.words
        for index, word in enumerate(words):
            candidates = self.words.get(word, []) + (self.words.get(word[:-1], []) if word.endswith("s") else []) + (self.words.get(word[:-2], []) if word.endswith("es") else [])
            for term_words, term in candidates:
                end = index + len(term_words)
                if end <= len(words) and all(self._same(w, t) for w, t in zip(words[index:end], term_words)):
                    found.append((text[normalised.spans[index][0] : normalised.spans[end - 1][1]], term))
        for cjk, term in self.cjk:
            start = normalised.cjk.find(cjk)
            while start > 0 and cjk[0] in CHINESE_NUMERALS and normalised.cjk[start - 1] in CHINESE_NUMERALS:
                start = normalised.cjk.find(cjk, start + 1)  # "七岁" is not inside "二十七岁" (27 years old)
            if start >= 0:
                first, last = normalised.cjk_positions[start], normalised.cjk_positions[start + len(cjk) - 1]
                found.append((text[first : last + 1], term))
        return found


# ------------------------------------------------------------------------------------------ the moderator


class Moderator:
    """A policy made ready to check texts: term matchers built, example embeddings computed on first use."""

    def __init__(self, policy: Policy | None = None, encoder: Any = None):
        self.policy = policy or load_policy()
        self._encoder = encoder
        self._examples: dict[str, np.ndarray] = {}
        self._benign: np.ndarray | None = None
        self.matchers = {rule.name: TermMatcher(rule.terms, rule.ignore_terms) for rule in self.policy.categories}
        self.groups = {rule.name: [TermMatcher(group, rule.ignore_terms) for group in rule.all_of] for rule in self.policy.categories}

    # -- semantic
    def encoder(self) -> Any:
        if self._encoder is None:
            from aigc.prompts import load_prompt_encoder

            self._encoder = load_prompt_encoder(SEMANTIC_ENCODER)
        return self._encoder

    def _embeddings(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if self._benign is None:
            rules = [rule for rule in self.policy.categories if rule.examples]
            texts = [example for rule in rules for example in rule.examples] + list(self.policy.benign_examples)
            vectors = self.encoder().encode(texts)
            start = 0
            for rule in rules:
                self._examples[rule.name] = vectors[start : start + len(rule.examples)]
                start += len(rule.examples)
            self._benign = vectors[start:]
        return self._examples, self._benign

    def similarities(self, texts: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(max similarity to a benign example [N], per category the similarities to its examples [N, E])."""
        examples, benign = self._embeddings()
        vectors = self.encoder().encode(texts)  # unit length
        return (vectors @ benign.T).max(axis=1), {name: vectors @ matrix.T for name, matrix in examples.items()}

    # -- the decision
    def check(self, text: str, semantic: bool | None = None) -> Decision:
        """The decision for one text (see the module docstring)."""
        return self.check_many([text], semantic)[0]

    def check_many(self, texts: list[str], semantic: bool | None = None) -> list[Decision]:
        use_semantic = self.policy.semantic if semantic is None else semantic
        findings: list[list[Finding]] = [self._lexical(text) for text in texts]
        if use_semantic:
            pieces = [(index, piece) for index, text in enumerate(texts) for piece in _pieces(readable(text))]
            if pieces:
                benign, per_category = self.similarities([piece for _, piece in pieces])
                rules = [rule for rule in self.policy.categories if rule.action != "allow" and rule.name in per_category]
                for row, (index, _) in enumerate(pieces):
                    # Nearest neighbour: the category of the closest example, if closer than any harmless one.
                    best_rule, best, score = None, 0, float(benign[row])
                    for rule in rules:
                        column = int(np.argmax(per_category[rule.name][row]))
                        if per_category[rule.name][row, column] > score:
                            best_rule, best, score = rule, column, float(per_category[rule.name][row, column])
                    if best_rule is None or score < best_rule.threshold or any(f.category == best_rule.name for f in findings[index]):
                        continue
                    findings[index].append(Finding(best_rule.name, best_rule.action, "semantic", best_rule.examples[best], best_rule.examples[best], round(score, 4), best_rule.threshold))
        decisions = []
        for text, found in zip(texts, findings):
            found.sort(key=lambda f: (-SEVERITY[f.action], f.method == "semantic", -f.score))
            action = found[0].action if found else "allow"
            decisions.append(Decision(action, tuple(found), text))
        return decisions

    def _lexical(self, text: str) -> list[Finding]:
        from aigc.safety.privacy import find_personal_data

        normalised = normalise(text)
        found: list[Finding] = []
        for rule in self.policy.categories:
            if rule.action == "allow":
                continue
            hits = self.matchers[rule.name].find(text, normalised)
            if hits:
                evidence, term = hits[0]
                found.append(Finding(rule.name, rule.action, "term", evidence, term, 1.0, 1.0))
                continue
            groups = self.groups[rule.name]
            if groups:
                group_hits = [matcher.find(text, normalised) for matcher in groups]
                if all(group_hits):
                    evidence = " + ".join(hits[0][0] for hits in group_hits)
                    matched = " + ".join(hits[0][1] for hits in group_hits)
                    found.append(Finding(rule.name, rule.action, "combination", evidence, matched, 1.0, 1.0))
                    continue
            if rule.name == "personal_data":
                for item in find_personal_data(text)[:1]:
                    found.append(Finding(rule.name, rule.action, "pattern", item.text, item.kind.replace("_", " "), 1.0, 1.0))
        return found


def _pieces(text: str, limit: int = 300) -> list[str]:
    """The text the semantic check reads: a short prompt whole; a long one as its sentences (each up to
    `limit` characters), since one harmful sentence in a long text would be averaged away."""
    text = text.strip()
    if not text:
        return []
    if len(text) <= limit:
        return [text]
    sentences = [s.strip() for s in re.split(r"(?<=[.!?。！？\n])", text) if s.strip()]
    return [s[:limit] for s in sentences][:64]


@functools.lru_cache(maxsize=8)
def moderator_for(policy_path: str | None = None) -> Moderator:
    """One moderator per policy file per process (the encoder and example embeddings are reused)."""
    return Moderator(load_policy(policy_path))


def moderate(text: str, *, policy: str | Path | None = None) -> Decision:
    """The decision for `text` under the policy in file `policy` (default: the packaged one)."""
    return moderator_for(None if policy is None else str(policy)).check(text)


# ------------------------------------------------------------------------------------------ the pipeline check


def request_texts(request: Any) -> list[tuple[str, str]]:
    """(field, text) for every text a request carries: prompt(s) and a negative prompt."""
    texts = []
    for name in ("prompt", "negative_prompt"):
        value = getattr(request, name, None)
        for text in [value] if isinstance(value, str) else (value or []):
            if isinstance(text, str) and text.strip():
                texts.append((name, text))
    return texts


@dataclass
class ModerationCheck:
    """A request check for `GenerationPolicy.before`: refuses a blocked prompt with a ModerationError and
    warns (AigcWarning) for a warned one."""

    moderator: Moderator
    warn: bool = True  # False: return the warned decisions in `decisions` without a Python warning
    decisions: list[Decision] = field(default_factory=list)  # the last request's decisions, for a job record

    def __call__(self, request: Any, info: Any = None) -> None:
        texts = request_texts(request)
        unique = list(dict.fromkeys(text for _, text in texts))
        decisions = dict(zip(unique, self.moderator.check_many(unique))) if unique else {}
        self.decisions = list(decisions.values())
        for name, text in texts:
            decision = decisions[text]
            if decision.action == "block":
                raise ModerationError(decision, field=name)
        for decision in self.decisions if self.warn else ():
            if decision.action == "warn":
                warnings.warn(AigcWarning(f"moderation: {decision.explain()}"), stacklevel=2)

"""Moderation precision and recall per category and language, on the labelled prompts of
benchmarks/safety_prompts.py and their evasion variants, and false positives on harmless text: the
project's caption sets (MNIST and Fashion-MNIST templates, every Twemoji caption when prepared) and the
benign list.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/safety_moderation.py [--policy FILE] [--no-semantic]

A harmful prompt counts as found when its category is among the decision's findings; a category's
precision counts the prompts flagged with it that carry its label (a `minors_sexual` prompt flagged
`sexual` too is right on both: it is sexual). "flagged" means any finding (warn or block).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from safety_prompts import BENIGN, HARMFUL, evasions  # noqa: E402

from aigc.safety.moderation import Moderator, load_policy  # noqa: E402


def caption_sets() -> dict[str, list[str]]:
    from aigc.data.captions import FASHION_NAMES, LANGUAGES, TEMPLATE_SETS, digit_captions, fashion_captions

    sets = {
        "mnist captions": sorted({c for d in range(10) for s in TEMPLATE_SETS for c in digit_captions(d, s)}),
        "fashion captions": sorted({c for k in range(len(FASHION_NAMES)) for s in TEMPLATE_SETS for lang in LANGUAGES for c in fashion_captions(k, s, lang)}),
    }
    try:
        from aigc.data.emoji import read_emoji

        _, captions, _ = read_emoji(None)
        sets["twemoji captions"] = sorted({c for per_image in captions for c in per_image})
    except Exception as error:  # not prepared here: say so, measure the rest
        print(f"(twemoji captions skipped: {str(error).splitlines()[0]})", file=sys.stderr)
    return sets


def labelled() -> list[tuple[str, str | None, str, str]]:
    """(text, category or None, language, variant) for every labelled prompt and its evasions."""
    rows = []
    for category, languages in HARMFUL.items():
        for language, texts in languages.items():
            for text in texts:
                rows.append((text, category, language, "plain"))
                if category != "personal_data":  # disguising digits is not the point there
                    rows += [(variant, category, language, kind) for kind, variant in evasions(text, language).items()]
    for language, texts in BENIGN.items():
        for text in texts:
            rows.append((text, None, language, "plain"))
            rows += [(variant, None, language, kind) for kind, variant in evasions(text, language).items()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--policy", default=None)
    parser.add_argument("--no-semantic", action="store_true")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    moderator = Moderator(load_policy(args.policy))
    semantic = not args.no_semantic
    rows = labelled()
    started = time.perf_counter()
    decisions = moderator.check_many([r[0] for r in rows], semantic=semantic)
    seconds = time.perf_counter() - started
    found = defaultdict(lambda: [0, 0])  # (category, language, plain?) -> [found, total]
    flagged_as = defaultdict(lambda: [0, 0])  # (category, language) -> [right, flagged]
    for (text, label, language, variant), decision in zip(rows, decisions):
        categories = {f.category for f in decision.findings}
        if label is not None:
            key = (label, language, "plain" if variant == "plain" else "evasion")
            found[key][1] += 1
            found[key][0] += label in categories
            if args.show_misses and label not in categories:
                print(f"MISS {label} {variant}: {text!r} -> {decision.explain()}")
        elif args.show_misses and categories:
            print(f"FALSE {variant}: {text!r} -> {decision.explain()}")
        for category in categories:
            right = label == category or (category == "sexual" and label == "minors_sexual")
            flagged_as[(category, language)][1] += 1
            flagged_as[(category, language)][0] += right
    print(f"mode: {'terms + patterns + semantic' if semantic else 'terms + patterns only'}; {len(rows)} prompts in {seconds:.1f} s")
    print("| category | language | recall (plain) | recall (evasions) | precision |")
    print("|---|---|---|---|---|")
    for category in HARMFUL:
        for language in ("en", "zh"):
            plain, evasion, (right, flagged) = found[(category, language, "plain")], found[(category, language, "evasion")], flagged_as[(category, language)]
            evasion_text = f"{evasion[0]}/{evasion[1]} = {evasion[0] / evasion[1]:.2f}" if evasion[1] else "-"
            precision = f"{right}/{flagged} = {right / flagged:.2f}" if flagged else "-"
            print(f"| {category} | {language} | {plain[0]}/{plain[1]} = {plain[0] / plain[1]:.2f} | {evasion_text} | {precision} |")
    benign_rows = [(r, d) for r, d in zip(rows, decisions) if r[1] is None]
    print("\n| harmless set | texts | flagged (warn or block) | blocked |")
    print("|---|---|---|---|")
    for language in ("en", "zh"):
        subset = [d for r, d in benign_rows if r[2] == language]
        print(f"| benign list {language} (with its variants) | {len(subset)} | {sum(d.action != 'allow' for d in subset)} | {sum(d.action == 'block' for d in subset)} |")
    for name, texts in caption_sets().items():
        results = moderator.check_many(texts, semantic=semantic)
        flagged = [(t, d) for t, d in zip(texts, results) if d.action != "allow"]
        print(f"| {name} | {len(texts)} | {len(flagged)} ({len(flagged) / len(texts):.2%}) | {sum(d.action == 'block' for _, d in flagged)} |")
        for text, decision in flagged[:12] if args.show_misses else []:
            print(f"    {text!r}: {decision.explain()}")


if __name__ == "__main__":
    main()

"""`aigc moderate "TEXT"` — the moderation decision for a prompt, with its reasons.
`aigc verify FILE` — whether a file carries the project's invisible watermark, and how strongly."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

console = Console()

BLOCKED_EXIT = 1  # `aigc moderate` exits 1 for a blocked text, so scripts can test it


def moderate_command(
    text: str = typer.Argument(..., help="The prompt to check (English or Chinese)."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="A policy TOML file (default: AIGC_SAFETY_POLICY, else the packaged one)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    no_semantic: bool = typer.Option(False, "--no-semantic", help="Terms and patterns only (no sentence encoder)."),
) -> None:
    """Print the moderation decision for TEXT: allow, warn or block, with category, evidence, score and
    threshold. Exits 1 when the text is blocked."""
    from aigc.safety.moderation import moderator_for
    from aigc.safety.settings import SafetySettings

    policy = policy or SafetySettings.from_env().policy_file
    decision = moderator_for(None if policy is None else str(policy)).check(text, semantic=False if no_semantic else None)
    if as_json:
        print(json.dumps(decision.to_dict(), ensure_ascii=False, indent=2))
    else:
        colour = {"block": "red", "warn": "yellow", "allow": "green"}[decision.action]
        console.print(f"[bold {colour}]{decision.action}[/]", highlight=False)
        for finding in decision.findings:
            console.print(f"  {escape(finding.explain())}  [dim]({finding.method})[/]", highlight=False, soft_wrap=True)
    if decision.action == "block":
        sys.exit(BLOCKED_EXIT)


NOT_MARKED_EXIT = 1  # `aigc verify` exits 1 when no watermark is found


def verify_command(
    file: Path = typer.Argument(..., help="A generated image (PNG, JPEG, ...) or text (.txt, with --model)."),
    key: Optional[str] = typer.Option(None, "--key", help="The watermark key (default: AIGC_WATERMARK_KEY, else the public key)."),
    model: Optional[str] = typer.Option(None, "--model", help="Text: the model that may have written it (its tokenizer), e.g. gpt-shakespeare."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check FILE for aigc's invisible watermark and read the provenance it carries; say what each proves.
    Exits 1 when no watermark is found."""
    from aigc.errors import AigcError
    from aigc.safety.settings import SafetySettings
    from aigc.safety.verify import verify, verify_text

    if not file.is_file():
        raise AigcError(f"{file} is not a file", field="FILE", fix="give the path of a generated image or text")
    key = key or SafetySettings.from_env().watermark_key
    if file.suffix.lower() == ".txt":
        if model is None:
            raise AigcError("a text's watermark is read with the tokenizer of the model that wrote it", field="--model", fix="add --model NAME (a zoo name or a run folder), e.g. --model gpt-shakespeare")
        from aigc.loading import load

        module = load(model).module
        if not hasattr(module, "tokenizer"):
            raise AigcError(f"{model} is not a text model", field="--model", fix="name the language model that generated the text")
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise AigcError(f"{file} is not UTF-8 text", field="FILE", fix="give the .txt file aigc generate wrote") from None
        report = verify_text(text, module.tokenizer, module.config.vocab_size, key)
    else:
        report = verify(file.read_bytes(), str(file), key)
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        colour = "green" if report.marked else "yellow"
        console.print(f"[bold {colour}]{'watermarked' if report.marked else 'no watermark found'}[/]: {escape(str(file))}", highlight=False)
        for statement in report.statements:
            console.print(f"  {escape(statement)}", highlight=False, soft_wrap=True)
    if not report.marked:
        sys.exit(NOT_MARKED_EXIT)

"""`aigc moderate "TEXT"` — the moderation decision for a prompt, with its reasons.
`aigc verify FILE` — a file's content credentials (C2PA), invisible watermark and provenance, and what each proves.
`aigc keys init-signing DIR` — development signing credentials (a CA and a signer) for content credentials."""

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


NOT_MARKED_EXIT = 1  # `aigc verify` exits 1 when nothing ties the file to aigc, or its credentials are invalid


def verify_command(
    file: Path = typer.Argument(..., help="A generated image (PNG, JPEG, ...), WAV clip, or text (.txt, with --model)."),
    key: Optional[str] = typer.Option(None, "--key", help="The watermark key (default: AIGC_WATERMARK_KEY, else the public key)."),
    trust: Optional[Path] = typer.Option(None, "--trust", help="CA certificates (PEM) to trust as signers of content credentials (default: AIGC_TRUST_ANCHORS)."),
    model: Optional[str] = typer.Option(None, "--model", help="Text: the model that may have written it (its tokenizer), e.g. gpt-shakespeare."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check FILE's content credentials (a signed C2PA manifest), its invisible watermark and the provenance
    it carries; say what each proves. Exits 1 when neither a watermark nor valid credentials are found, or
    when the credentials are invalid (the file changed after signing)."""
    from aigc.errors import AigcError
    from aigc.safety.settings import SafetySettings
    from aigc.safety.verify import verify, verify_text

    settings = SafetySettings.from_env()
    key = key or settings.watermark_key
    trust = trust or settings.trust_anchors
    if trust is not None and not trust.is_file():
        raise AigcError(f"{trust} is not a file", field="--trust", fix="give a PEM file of CA certificates, e.g. the ca.pem of `aigc keys init-signing`")
    if file.is_dir():
        _verify_checkpoint(file, trust)
        return
    if not file.is_file():
        raise AigcError(f"{file} is not a file", field="FILE", fix="give the path of a generated image, WAV or text (or a run folder, for its signature)")
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
        report = verify(file.read_bytes(), str(file), key, None if trust is None else trust.read_bytes())
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        state = report.credentials.get("state")
        colour = "red" if state == "Invalid" else "green" if report.proven else "yellow"
        credentials = "" if state is None else f", content credentials {'none' if state == 'none' else state}"
        console.print(f"[bold {colour}]{'watermarked' if report.marked else 'no watermark found'}{credentials}[/]: {escape(str(file))}", highlight=False)
        for statement in report.statements:
            console.print(f"  {escape(statement)}", highlight=False, soft_wrap=True)
    if not report.proven:
        sys.exit(NOT_MARKED_EXIT)


def init_signing_command(
    folder: Path = typer.Argument(..., help="Where to write ca.pem, signer.pem, signer.key and README.txt."),
    algorithm: str = typer.Option("es256", "--algorithm", help="es256 (ECDSA P-256) or ed25519."),
    days: int = typer.Option(365, "--days", help="Validity of the certificates, 1..3650 days."),
    force: bool = typer.Option(False, "--force", help="Replace credentials already in the folder."),
) -> None:
    """Make DEVELOPMENT signing credentials: a local CA and a signer it certifies, for content credentials
    (AIGC_SIGNING_DIR=DIR). Nobody else trusts this CA; verify with --trust DIR/ca.pem."""
    from aigc.safety.credentials import CA_FILE, init_signing

    folder = init_signing(folder, algorithm, days, force)
    console.print(f"wrote DEVELOPMENT signing credentials ({algorithm}, {days} days) to {escape(str(folder))}", highlight=False)
    console.print(f"  sign:   AIGC_SIGNING_DIR={escape(str(folder))} aigc generate ...", highlight=False)
    console.print(f"  verify: aigc verify FILE --trust {escape(str(folder / CA_FILE))}", highlight=False)


def _verify_checkpoint(folder: Path, trust: Optional[Path]) -> None:
    """A run or checkpoint folder: whether its signature (aigc keys sign) holds for the trusted CAs."""
    from aigc import checkpoint as ckpt
    from aigc.errors import AigcError

    checkpoint = ckpt.resolve_checkpoint(folder)
    if trust is None:
        raise AigcError("a checkpoint's signature is checked against the CAs you trust", field="--trust", fix="add --trust CA.pem (or set AIGC_TRUST_ANCHORS)")
    problem = ckpt.signature_problem(checkpoint, trust.read_bytes())
    if problem is None:
        console.print(f"[bold green]signed[/]: {escape(str(checkpoint))} — checkpoint.json, and through its sha256 list every weights file, "
                      f"is as a signer issued by {escape(str(trust))} signed it", highlight=False, soft_wrap=True)
        return
    console.print(f"[bold red]not verified[/]: {escape(str(checkpoint))}: {escape(problem)}", highlight=False, soft_wrap=True)
    sys.exit(NOT_MARKED_EXIT)


def sign_command(
    run: Path = typer.Argument(..., help="A run folder or checkpoint (a zoo export too) to sign."),
    keys: Optional[Path] = typer.Option(None, "--keys", help="The signing folder (default: AIGC_SIGNING_DIR)."),
) -> None:
    """Sign a checkpoint: RUN/.../signature.json over its checkpoint.json (which lists the sha256 of every
    weights file). With AIGC_REQUIRE_SIGNATURE=CA.pem, loading refuses checkpoints without a valid one."""
    from aigc.errors import AigcError
    from aigc.safety.credentials import SigningCredentials, sign_checkpoint
    from aigc.safety.settings import SafetySettings

    folder = keys or SafetySettings.from_env().signing_dir
    if folder is None:
        raise AigcError("no signing folder given", field="--keys", fix="add --keys DIR (made by `aigc keys init-signing DIR`) or set AIGC_SIGNING_DIR")
    credentials = SigningCredentials.load(folder, field_name="--keys")
    path = sign_checkpoint(run, credentials)
    console.print(f"wrote {escape(str(path))} (signed by {escape(credentials.subject)}{', DEVELOPMENT credentials' if credentials.development else ''})", highlight=False)

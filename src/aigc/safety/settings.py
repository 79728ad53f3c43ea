"""The safety settings: one object, read from the environment, that `default_policy` turns into the
generation policy the CLI, the Python API and the studio all apply.

    AIGC_MODERATION=off          no prompt moderation
    AIGC_SAFETY_POLICY=FILE      a moderation policy of your own (start from a copy of aigc/safety/policy.toml)
    AIGC_WATERMARK=off           no invisible watermark in generated images, audio and text
    AIGC_WATERMARK_KEY=SECRET    the key of the watermark; without one, the project's public key is used,
                                 so anyone can detect (and, with effort, remove) the mark
    AIGC_OUTPUT_CHECKS=warn      check outputs against the run's training data (near copies, safety/output_checks.py):
                                 warn (flag them in the result) or block (refuse them); off by default
    AIGC_SIGNING_DIR=DIR         sign every PNG/JPEG/WAV written with a C2PA manifest, with DIR's signer.pem and
                                 signer.key (`aigc keys init-signing DIR` makes development ones)
    AIGC_TRUST_ANCHORS=CA.pem    the CA certificates `aigc verify` and /api/v1/verify trust (default: none)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Mapping

from pydantic import BaseModel, Field

from aigc.errors import AigcError

PUBLIC_WATERMARK_KEY = "aigc-public-watermark-key-v1"  # detectable by anyone: set your own for a private mark


class SafetySettings(BaseModel):
    moderation: bool = True  # check prompts against the moderation policy before generating
    policy_file: Path | None = None  # None: the packaged policy (aigc/safety/policy.toml)
    watermark: bool = True  # mark generated images (large enough to hold it), audio clips and sampled text
    watermark_key: str = Field(PUBLIC_WATERMARK_KEY, min_length=8)  # the secret that places the mark
    output_checks: Literal["off", "warn", "block"] = "off"  # near-copy checks against the training data (they read it: opt in)
    signing_dir: Path | None = None  # content credentials: a folder with signer.pem + signer.key; None: files are not signed
    trust_anchors: Path | None = None  # PEM file of CA certificates a verifier trusts; None: a valid signature reads as untrusted

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "SafetySettings":
        environ = os.environ if environ is None else environ
        values: dict = {}
        for name, key in (("AIGC_MODERATION", "moderation"), ("AIGC_WATERMARK", "watermark")):
            if name in environ:
                values[key] = _switch(name, environ[name])
        if environ.get("AIGC_OUTPUT_CHECKS"):
            value = environ["AIGC_OUTPUT_CHECKS"].strip().lower()
            if value not in ("off", "warn", "block"):
                raise AigcError(f"{environ['AIGC_OUTPUT_CHECKS']!r} is not off, warn or block", field="AIGC_OUTPUT_CHECKS", fix="set AIGC_OUTPUT_CHECKS=warn (flag near copies) or block (refuse them)")
            values["output_checks"] = value
        if environ.get("AIGC_SAFETY_POLICY"):
            values["policy_file"] = Path(environ["AIGC_SAFETY_POLICY"])
        for name, key in (("AIGC_SIGNING_DIR", "signing_dir"), ("AIGC_TRUST_ANCHORS", "trust_anchors")):
            if environ.get(name):
                values[key] = Path(environ[name])
        if environ.get("AIGC_WATERMARK_KEY"):
            key = environ["AIGC_WATERMARK_KEY"]
            if len(key) < 8:
                raise AigcError("the watermark key is shorter than 8 characters", field="AIGC_WATERMARK_KEY", fix="use a longer secret, e.g. from `python -c 'import secrets; print(secrets.token_hex(16))'`")
            values["watermark_key"] = key
        return cls(**values)


def _switch(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise AigcError(f"{text!r} is not on or off", field=name, fix=f"set {name}=on or {name}=off")

"""Checkpoints: safetensors weights plus a JSON sidecar. Loading never unpickles anything.

A checkpoint is a folder, published atomically (written under a temporary name, then renamed):

    checkpoints/step-000500/
        model.safetensors      the model's state dict
        ema.safetensors        EMA weights, when training kept them (generation prefers them)
        state.safetensors      optimizer moments, RNG states, ... (only what exact resume needs)
        checkpoint.json        config, step, metrics, package versions, data fingerprint, sha256 of each file
        signature.json         optional: a signer's signature over checkpoint.json (`aigc keys sign RUN`)
    checkpoints/latest         the name of the newest complete checkpoint (written last, atomically)

Every file is fsynced before the folder is renamed into place. When `latest` is missing or names a
broken checkpoint (a crash, a disk error), the newest `step-*` that verifies is used instead, with a
warning; `clean_staging` removes what an interrupted write leaves (`.step-*.tmp-*`, `.latest.*.tmp`).

Nested state (an optimizer's state_dict, RNG states) is split into tensors, stored in safetensors, and a
JSON skeleton that says where each tensor goes back (`flatten_state` / `unflatten_state`).
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from aigc.errors import AigcWarning, CheckpointError
from aigc.files import atomic_write_text, publish_directory, sha256_file

FORMAT = "aigc-checkpoint"
FORMAT_VERSION = 1
SIDECAR = "checkpoint.json"
SIGNATURE = "signature.json"  # a signature over the sidecar, which holds the sha256 of every file
SIGNATURE_SCHEME = "aigc-checkpoint-signature-v1"
_TENSOR = "__tensor__"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("aigc", "torch", "numpy", "safetensors", "pydantic"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def flatten_state(value: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace every tensor in a nested dict/list by a reference, collecting the tensors by key."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().cpu().contiguous().clone()
        return {_TENSOR: prefix}
    if isinstance(value, dict):
        # JSON keys are strings; remember int keys (optimizer state is keyed by parameter index).
        return {
            "__dict__": [
                [key, flatten_state(item, tensors, f"{prefix}.{key}")] for key, item in value.items()
            ]
        }
    if isinstance(value, (list, tuple)):
        return [flatten_state(item, tensors, f"{prefix}.{index}") for index, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} at {prefix} in a checkpoint")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict) and _TENSOR in skeleton:
        return tensors[skeleton[_TENSOR]]
    if isinstance(skeleton, dict) and "__dict__" in skeleton:
        return {key: unflatten_state(item, tensors) for key, item in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [unflatten_state(item, tensors) for item in skeleton]
    return skeleton


def _plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share memory (tied weights); cloning stores each key on its own.
    return {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}


def save_checkpoint(
    directory: str | Path,
    *,
    weights: dict[str, dict[str, torch.Tensor]],
    training_state: dict[str, Any] | None,
    sidecar: dict[str, Any],
) -> Path:
    """Write `weights` (file stem -> state dict), the resumable state and the sidecar, atomically."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
    try:
        files = {}
        for stem, state in weights.items():
            save_file(_plain_tensors(state), str(staging / f"{stem}.safetensors"))
            files[f"{stem}.safetensors"] = sha256_file(staging / f"{stem}.safetensors")
        skeleton = None
        if training_state is not None:
            tensors: dict[str, torch.Tensor] = {}
            skeleton = flatten_state(training_state, tensors, "state")
            save_file(tensors, str(staging / "state.safetensors"))
            files["state.safetensors"] = sha256_file(staging / "state.safetensors")
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": package_versions(),
            **sidecar,
            "files": files,
            "training_state": skeleton,
        }
        (staging / SIDECAR).write_text(json.dumps(document, indent=2, sort_keys=False), encoding="utf-8")
        publish_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic_write_text(directory.parent / "latest", directory.name + "\n")
    return directory


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, from itself, a run folder (its latest checkpoint) or a sidecar file."""
    path = Path(path)
    if path.is_file() and path.name == SIDECAR:
        path = path.parent
    if (path / SIDECAR).is_file():
        return path
    for folder in (path / "checkpoints", path):
        if (folder / "latest").exists() or any(folder.glob("step-*")):
            found = newest_checkpoint(folder)
            if found is not None:
                return found
            raise CheckpointError(
                f"{folder} holds no complete checkpoint (its latest and every step-* are missing files or corrupt)",
                fix="train the run again from the start, or restore the checkpoints from a backup",
            )
    if not path.exists():
        raise CheckpointError(f"{path} does not exist", fix="give a run folder (from `aigc train --out`) or a checkpoint folder")
    raise CheckpointError(
        f"{path} holds no checkpoint (no {SIDECAR}, no checkpoints/latest)",
        fix="train first, or point at a folder like RUN/checkpoints/step-000500",
    )


def newest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint `folder/latest` names; if that is missing or broken, the newest step-* that
    verifies (sidecar and sha256 of every file), with a warning; None when there is none."""
    named = _latest_name(folder)
    problem = _problem(folder / named, verify=False) if named else f"{folder / 'latest'} is missing or unreadable"
    if problem is None:
        return folder / named
    for candidate in sorted(folder.glob("step-*"), reverse=True):
        if candidate.is_dir() and _problem(candidate, verify=True) is None:
            warnings.warn(f"{problem}; using {candidate.name}, the newest checkpoint that verifies", AigcWarning, stacklevel=2)
            return candidate
    return None


def _latest_name(folder: Path) -> str:
    try:
        name = (folder / "latest").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return name if name and "/" not in name and name not in (".", "..") else ""


def _problem(checkpoint: Path, *, verify: bool) -> str | None:
    """What is wrong with a checkpoint folder, or None when it is complete (and, with verify, intact)."""
    try:
        sidecar = read_sidecar(checkpoint)
    except CheckpointError as error:
        return str(error).splitlines()[0]
    for filename, expected in sidecar["files"].items():
        path = checkpoint / filename
        if not path.is_file():
            return f"{path} is missing"
        if verify and sha256_file(path) != expected:
            return f"{path} does not match its sha256"
    return None


def clean_staging(folder: Path) -> list[Path]:
    """Remove what interrupted writes left in a checkpoints folder: staging folders, replaced folders
    awaiting deletion and temporary `latest` files. Only one process writes a run, so none is in use."""
    leftovers = [*folder.glob(".step-*.tmp-*"), *folder.glob(".step-*.old-*"), *folder.glob(".latest.*.tmp")]
    for leftover in leftovers:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    return leftovers


def read_sidecar(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / SIDECAR
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{path} is not UTF-8 text: the file is corrupt", fix="use an earlier checkpoint") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"cannot read {path}: {error}", fix="use an earlier checkpoint") from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{path} holds a JSON {type(document).__name__}, not an object: it is not an aigc checkpoint")
    if document.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an aigc checkpoint (format {document.get('format')!r})")
    version = document.get("format_version", 0)
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: format_version is {version!r}, not a number: the file is corrupt")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format {version} is newer than this aigc understands ({FORMAT_VERSION})",
            fix="upgrade aigc",
        )
    for key, kind in (("config", dict), ("files", dict)):
        if not isinstance(document.get(key), kind):
            problem = "lacks" if key not in document else "has a malformed"
            raise CheckpointError(f"{path} {problem} {key!r}: the file is corrupt or was edited", fix="use an earlier checkpoint")
    return document


def read_tensors(checkpoint: Path, filename: str, sidecar: dict[str, Any], *, verify: bool = True) -> dict[str, torch.Tensor]:
    path = checkpoint / filename
    expected = sidecar.get("files", {}).get(filename)
    if expected is None or not path.is_file():
        raise CheckpointError(f"{path} is missing", fix="the checkpoint is incomplete; use an earlier one")
    if verify and sha256_file(path) != expected:
        raise CheckpointError(f"{path} does not match the sha256 in {SIDECAR}: the file is corrupt or was changed")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:  # a broken header even though the sha256 matches (written so)
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})", fix="the checkpoint is corrupt; use an earlier one") from None


ADAPTER = "adapter.safetensors"  # a LoRA run's adapters, apart from the (frozen) base weights


def merge_adapter(tensors: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """Fold LoRA adapters into their base weights and drop them: W' = W + scale * B A (Hu et al. 2021, eq. 3).

    `NAME.lora_a` [rank, in, *kernel] and `NAME.lora_b` [out, rank, 1, 1 or nothing] belong to
    `NAME.weight` [out, in, *kernel] (Linear or Conv2d); the result loads into the family's plain network."""
    merged = {key: value for key, value in tensors.items() if not key.endswith((".lora_a", ".lora_b"))}
    for key, down in tensors.items():
        if not key.endswith(".lora_a"):
            continue
        name = key[: -len(".lora_a")]
        up, weight = tensors.get(f"{name}.lora_b"), merged.get(f"{name}.weight")
        if up is None or weight is None:
            raise CheckpointError(f"the LoRA adapter {name} lacks its lora_b or base weight", fix="use an earlier checkpoint")
        delta = (up.flatten(1).float() @ down.flatten(1).float()).view(weight.shape)  # [out, in * kernel] -> W's shape
        merged[f"{name}.weight"] = (weight.float() + scale * delta).to(weight.dtype)
    return merged


def read_weights(checkpoint: Path, stem: str, sidecar: dict[str, Any]) -> dict[str, torch.Tensor]:
    """`stem`.safetensors as the family's plain network loads it: a LoRA run's adapters merged in."""
    tensors = read_tensors(checkpoint, f"{stem}.safetensors", sidecar)
    lora = sidecar.get("lora")
    if not isinstance(lora, dict):
        return tensors
    if stem == "model":  # EMA files hold the averaged adapters themselves
        tensors = {**tensors, **read_tensors(checkpoint, ADAPTER, sidecar)}
    return merge_adapter(tensors, float(lora["scale"]))


def read_training_state(checkpoint: Path, sidecar: dict[str, Any]) -> dict[str, Any]:
    if sidecar.get("training_state") is None:
        raise CheckpointError(f"{checkpoint} holds weights only, not the state needed to resume training")
    tensors = read_tensors(checkpoint, "state.safetensors", sidecar)
    where = checkpoint / SIDECAR
    try:
        state = unflatten_state(sidecar["training_state"], tensors)
    except (KeyError, TypeError, ValueError):
        state = None
    if not isinstance(state, dict):
        raise CheckpointError(f"the training state in {where} is malformed", fix="use an earlier checkpoint")
    return state


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str, left_out: tuple[str, ...] = ()) -> None:
    """load_state_dict with a message that says which keys or shapes disagree. Keys starting with a
    `left_out` prefix may be missing (a zoo export without the training-only weights); they keep their init."""
    broken = sorted(key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all())
    if broken:
        raise CheckpointError(
            f"{source} holds weights that are NaN or infinite ({', '.join(broken[:5])}): they would make blank or noise samples",
            fix="use an earlier checkpoint of the run (training diverged or the file was damaged)",
        )
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state) if not k.startswith(left_out))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {missing[:5]}")
        if unexpected:
            details.append(f"unexpected {unexpected[:5]}")
        if wrong:
            details.append(", ".join(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:5]))
        raise CheckpointError(
            f"{source} does not fit the model built from its config: " + "; ".join(details),
            fix="the weights and checkpoint.json come from different runs or versions",
        )
    model.load_state_dict(state, strict=not left_out)


def signature_problem(checkpoint: Path, trust_pem: bytes, now: datetime | None = None) -> str | None:
    """Why `checkpoint`'s signature does not hold, or None when it does: signature.json signs the exact bytes
    of checkpoint.json (and so, through its sha256 list, every weights file) with a certificate that a CA in
    `trust_pem` issued and that was valid when checked. Written by `aigc keys sign` (safety/credentials.py)."""
    import base64

    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    path = checkpoint / SIGNATURE
    if not path.is_file():
        return f"it is not signed (no {SIGNATURE})"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        chain = x509.load_pem_x509_certificates(document["certificates"].encode("ascii"))
        signature = base64.b64decode(document["signature"])
        anchors = x509.load_pem_x509_certificates(trust_pem)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return f"{path} or the trust anchors cannot be read ({error})"
    if document.get("scheme") != SIGNATURE_SCHEME:
        return f"{path} is not an aigc checkpoint signature (scheme {document.get('scheme')!r})"
    leaf, key = chain[0], chain[0].public_key()
    try:
        signed = (checkpoint / SIDECAR).read_bytes()
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signed)
        else:
            return f"the signing key is a {type(key).__name__}; ES256 and Ed25519 are accepted"
    except InvalidSignature:
        return f"the signature does not match {SIDECAR}: the checkpoint was changed after it was signed"
    now = now or datetime.now(timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        return f"the signer's certificate is valid {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}, not now"
    for issuer, anchor in ((certificate, anchor) for certificate in chain for anchor in anchors):
        try:
            (leaf if issuer is leaf else issuer).verify_directly_issued_by(anchor)
            if issuer is not leaf:
                leaf.verify_directly_issued_by(issuer)  # leaf <- intermediate <- anchor
            return None
        except (ValueError, TypeError, InvalidSignature):
            continue
    return f"the signer ({leaf.subject.rfc4514_string()}) was not issued by a trusted CA"

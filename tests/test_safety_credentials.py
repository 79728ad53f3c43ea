"""Content credentials (aigc/safety/credentials.py): `aigc keys init-signing` makes a development chain that
c2pa-python accepts; with AIGC_SIGNING_DIR every PNG and WAV the generation path writes carries a signed
C2PA manifest (c2pa.created, trainedAlgorithmicMedia, model, checkpoint hash, parameters, no thumbnail);
`aigc verify` reads it as Valid (untrusted signer), Trusted with --trust, and Invalid with the reason after
one flipped byte; missing, expired, lone or wrong-purpose certificates are clear errors."""

from __future__ import annotations

import datetime
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from aigc.errors import AigcError
from aigc.generation.outputs import AudioClip, ImageBatch
from aigc.safety import SafetySettings, default_policy
from aigc.safety.credentials import CA_FILE, CHAIN_FILE, DIGITAL_SOURCE_TYPE, GENERATION_ASSERTION, KEY_FILE, ContentCredentials, SigningCredentials, init_signing
from aigc.safety.verify import verify

c2pa = pytest.importorskip("c2pa", reason="content credentials need c2pa-python: pip install 'aigc[c2pa]'")


def aigc(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys") / "dev"
    made = aigc("keys", "init-signing", str(folder))
    assert made.returncode == 0, made.stderr
    assert "DEVELOPMENT" in made.stdout and "DEVELOPMENT" in (folder / "README.txt").read_text()
    return folder


def _flip_in_pixels(png: bytes) -> bytes:
    """One bit of the first IDAT chunk's data flipped (the pixels, not the manifest)."""
    position = 8
    while position < len(png):
        length, tag = struct.unpack(">I4s", png[position : position + 8])
        if tag == b"IDAT":
            damaged = bytearray(png)
            damaged[position + 8 + length // 2] ^= 0x01
            return bytes(damaged)
        position += 12 + length
    raise AssertionError("no IDAT chunk")


def test_generated_pngs_are_signed_and_verify_says_valid_trusted_or_invalid(keys, tmp_path):
    out = tmp_path / "digits.png"
    made = aigc("generate", "cgan-mnist", "-n", "2", "--seed", "3", "--each", "--out", str(out), env={"AIGC_SIGNING_DIR": str(keys)})
    assert made.returncode == 0, made.stderr
    for path in (out, tmp_path / "digits-seed3.png"):  # the grid and each image
        with c2pa.Reader("image/png", str(path)) as reader:
            manifest = reader.get_active_manifest()
            assert reader.get_validation_state() == "Valid"  # intact; the development CA is in no trust list
        actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
        created = next(a for a in actions if a["action"] == "c2pa.created")
        assert created["digitalSourceType"] == DIGITAL_SOURCE_TYPE
        assert "cgan-mnist" in created["parameters"]["model"] and len(created["parameters"]["checkpoint_sha256"]) >= 16
        record = json.loads(next(a for a in manifest["assertions"] if a["label"] == GENERATION_ASSERTION)["data"]["record"])
        assert "cgan-mnist" in record["model"] and 3 in record["seeds"]
        assert "thumbnail" not in json.dumps(manifest)  # off: c2pa's default would grow a small PNG twentyfold
    assert out.stat().st_size < 30_000

    valid = aigc("verify", str(out))
    assert valid.returncode == 0 and "content credentials Valid" in valid.stdout and "not in the trust list" in valid.stdout, valid.stdout
    trusted = aigc("verify", str(out), "--trust", str(keys / CA_FILE), "--json")
    report = json.loads(trusted.stdout)
    assert trusted.returncode == 0 and report["credentials"]["state"] == "Trusted" and report["proven"]
    assert report["credentials"]["created"]["model"] == report["metadata"]["model"] == "cgan:zoo/cgan-mnist"

    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(_flip_in_pixels(out.read_bytes()))
    invalid = aigc("verify", str(damaged), "--trust", str(keys / CA_FILE))
    assert invalid.returncode == 1 and "INVALID" in invalid.stdout and "assertion.dataHash.mismatch" in invalid.stdout, invalid.stdout
    assert "Traceback" not in invalid.stderr


def test_an_unsigned_file_has_no_credentials_and_a_stranger_ca_does_not_make_it_trusted(keys, tmp_path):
    batch = ImageBatch(images=np.full((1, 32, 32, 3), 128, np.uint8), seeds=[0], labels=None, model="demo")
    plain = verify(batch.files()[0].data, "plain.png")
    assert plain.credentials["state"] == "none" and not plain.proven and "no C2PA manifest" in plain.statements[0]
    other = init_signing(tmp_path / "other")
    signed = ContentCredentials(SigningCredentials.load(keys))(batch).files()[0].data
    report = verify(signed, "signed.png", trust_pem=(other / CA_FILE).read_bytes())
    assert report.credentials["state"] == "Valid" and "signingCredential.untrusted" in {f["code"] for f in report.credentials["failures"]}


def test_ed25519_credentials_sign_a_wav_from_a_trained_model(tmp_path):
    from helpers import train_tiny

    import aigc as api

    folder = init_signing(tmp_path / "ed", algorithm="ed25519")
    run = train_tiny("wavegan", tmp_path / "wavegan").run_dir
    settings = SafetySettings(moderation=False, signing_dir=folder)
    clip = api.load(str(run)).generate({"count": 1, "seed": 5}, policy=default_policy(settings))
    assert isinstance(clip, AudioClip)
    wav = clip.files()[0].data
    report = verify(wav, "clip.wav", trust_pem=(folder / CA_FILE).read_bytes())
    assert report.kind == "audio" and report.credentials["state"] == "Trusted" and report.credentials["algorithm"].lower() == "ed25519"
    assert report.credentials["created"]["checkpoint_sha256"] and report.metadata["seeds"] == [5]
    path = clip.save(tmp_path / "all.wav")  # the joined file goes through the same file hooks
    assert verify(path.read_bytes(), "all.wav").credentials["state"] == "Valid"
    damaged = bytearray(wav)
    damaged[-10] ^= 0x10  # a sample near the end
    assert verify(bytes(damaged), "clip.wav").credentials["state"] == "Invalid"


def test_missing_expired_and_unusable_certificates_are_clear_errors(keys, tmp_path):
    with pytest.raises(AigcError, match="signer.pem is missing") as error:
        default_policy(SafetySettings(moderation=False, signing_dir=tmp_path / "nowhere"))
    assert error.value.field == "AIGC_SIGNING_DIR" and "aigc keys init-signing" in error.value.fix
    old = init_signing(tmp_path / "old", days=1, now=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
    with pytest.raises(AigcError, match="expired on 2020-01-02") as error:
        SigningCredentials.load(old)
    assert "--force" in error.value.fix
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / KEY_FILE).write_bytes((keys / KEY_FILE).read_bytes())
    (lone / CHAIN_FILE).write_bytes((keys / CHAIN_FILE).read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n")
    with pytest.raises(AigcError, match="signer's certificate alone"):
        SigningCredentials.load(lone)
    wrong_key = tmp_path / "wrong"
    init_signing(wrong_key)
    (wrong_key / KEY_FILE).write_bytes((keys / KEY_FILE).read_bytes())
    with pytest.raises(AigcError, match="is not the key of the certificate"):
        SigningCredentials.load(wrong_key)
    with pytest.raises(AigcError, match="already holds") as error:
        init_signing(keys)
    assert error.value.field == "DIR"
    refused = aigc("generate", "dcgan-mnist", "--out", str(tmp_path / "x.png"), env={"AIGC_SIGNING_DIR": str(old)})
    assert refused.returncode == 2 and "expired" in refused.stderr and "Traceback" not in refused.stderr and not (tmp_path / "x.png").exists()


def test_a_signed_checkpoint_loads_under_aigc_require_signature_and_a_changed_one_does_not(keys, tmp_path, monkeypatch):
    import shutil

    from helpers import train_tiny

    import aigc as api
    from aigc.errors import CheckpointError

    run = train_tiny("dcgan", tmp_path / "dcgan").run_dir
    unsigned = tmp_path / "unsigned"
    shutil.copytree(run, unsigned)
    signed = aigc("keys", "sign", str(run), "--keys", str(keys))
    assert signed.returncode == 0 and "signature.json" in signed.stdout and "DEVELOPMENT" in signed.stdout, signed.stderr
    intact = tmp_path / "intact"
    shutil.copytree(run, intact)
    assert aigc("verify", str(run), "--trust", str(keys / CA_FILE)).returncode == 0
    stranger = init_signing(tmp_path / "stranger")
    refused = aigc("verify", str(run), "--trust", str(stranger / CA_FILE))
    assert refused.returncode == 1 and "not issued by a trusted CA" in refused.stdout

    monkeypatch.setenv("AIGC_REQUIRE_SIGNATURE", str(keys / CA_FILE))
    assert api.load(str(run)).generate({"count": 1, "seed": 0}).images.shape[0] == 1
    with pytest.raises(CheckpointError, match="is not signed") as error:
        api.load(str(unsigned))
    assert error.value.field == "AIGC_REQUIRE_SIGNATURE" and "aigc keys sign" in error.value.fix
    from aigc.checkpoint import SIDECAR, resolve_checkpoint

    sidecar = resolve_checkpoint(run) / SIDECAR
    sidecar.write_text(sidecar.read_text().replace('"step": ', '"step":  '))  # one byte more, same JSON
    with pytest.raises(CheckpointError, match="changed after it was signed"):
        api.load(str(run))
    monkeypatch.setenv("AIGC_REQUIRE_SIGNATURE", str(stranger / CA_FILE))
    with pytest.raises(CheckpointError, match="not issued by a trusted CA"):
        api.load(str(intact))

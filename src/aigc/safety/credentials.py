"""Content credentials: a signed C2PA manifest (https://c2pa.org/specifications/) in every PNG, JPEG and WAV
the generation path writes, when a signing folder is configured (AIGC_SIGNING_DIR), and the reader's side.

    aigc keys init-signing keys/            # a DEVELOPMENT CA + signer (test only: nobody else trusts it)
    AIGC_SIGNING_DIR=keys/ aigc generate RUN --out a.png
    aigc verify a.png --trust keys/ca.pem   # Trusted; without --trust: Valid, signer untrusted

The manifest (c2pa-python, the Content Authenticity Initiative's binding of c2pa-rs) declares one action,
`c2pa.created` with the IPTC digital source type *trainedAlgorithmicMedia*, naming the model, its checkpoint
hash and the generation parameters; an `org.aigc.generation` assertion holds the file's whole provenance
record (the same JSON text its `aigc` text chunk carries, as one string). No thumbnail is embedded (c2pa's default would grow a
12 KB PNG to 290 KB). The manifest binds the file's bytes by hash: change one byte of the image or sound and
verification reports `assertion.dataHash.mismatch` (Invalid).

What c2pa-python 0.38 requires of the signing certificate, checked here before anything is signed: keyUsage
digitalSignature, the emailProtection extended key usage, a chain up to a CA (the leaf alone is not enough
to be trusted), within its validity period. ES256 (ECDSA P-256) and Ed25519 keys both sign.

A signing folder holds `signer.pem` (the signer's certificate followed by its CA's) and `signer.key` (its
private key, PKCS#8 PEM); `ca.pem` is the CA that verifiers add as a trust anchor. The same credentials
sign checkpoints and zoo entries (`aigc keys sign RUN`: a signature over checkpoint.json, which lists
the sha256 of every weights file), and AIGC_REQUIRE_SIGNATURE=CA.pem makes `load` refuse unsigned ones.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc.errors import AigcError

CHAIN_FILE, KEY_FILE, CA_FILE = "signer.pem", "signer.key", "ca.pem"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_ASSERTION = "org.aigc.generation"
SIGNED_TYPES = {"image/png": "image/png", "image/jpeg": "image/jpeg", "audio/wav": "audio/wav"}
DEVELOPMENT = "aigc DEVELOPMENT"  # in every name of a chain `init_signing` makes, so no one mistakes it for a real one
ALGORITHMS = ("es256", "ed25519")
SETTING = "AIGC_SIGNING_DIR"


def _c2pa():
    try:
        import c2pa
    except ImportError:
        raise AigcError("content credentials need the c2pa-python package", field=SETTING, fix="pip install 'aigc[c2pa]' (c2pa-python), or unset AIGC_SIGNING_DIR") from None
    return c2pa


# ------------------------------------------------------------------------------------------ a development chain


def init_signing(folder: str | Path, algorithm: str = "es256", days: int = 365, force: bool = False,
                 now: datetime.datetime | None = None) -> Path:
    """Write a development CA and a signer it certifies into `folder` (ca.pem, signer.pem, signer.key, README.txt).

    The CA's private key is not kept: this CA certifies this one signer only. Every subject name says
    "aigc DEVELOPMENT"; use a certificate from a real CA for files others should trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if algorithm not in ALGORITHMS:
        raise AigcError(f"unknown signing algorithm {algorithm!r}", field="--algorithm", fix=f"use one of: {', '.join(ALGORITHMS)}")
    if not 1 <= days <= 3650:
        raise AigcError(f"{days} days is out of range", field="--days", fix="give 1..3650 days of validity")
    folder = Path(folder)
    existing = [name for name in (CHAIN_FILE, KEY_FILE, CA_FILE) if (folder / name).exists()]
    if existing and not force:
        raise AigcError(f"{folder} already holds {', '.join(existing)}", field="DIR", fix="choose another folder, or add --force to replace the credentials there")
    now = now or datetime.datetime.now(datetime.timezone.utc)

    def new_key():
        return ec.generate_private_key(ec.SECP256R1()) if algorithm == "es256" else ed25519.Ed25519PrivateKey.generate()

    digest = hashes.SHA256() if algorithm == "es256" else None  # Ed25519 signs without a separate hash
    ca_key, signer_key = new_key(), new_key()

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{DEVELOPMENT} credentials")])

    def usage(**allowed: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
                               "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
        return x509.KeyUsage(**{**flags, **allowed})

    start = now - datetime.timedelta(minutes=5)  # a little slack for clocks
    ca = (x509.CertificateBuilder().subject_name(name(f"{DEVELOPMENT} CA")).issuer_name(name(f"{DEVELOPMENT} CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, digest))
    signer = (x509.CertificateBuilder().subject_name(name(f"{DEVELOPMENT} signer")).issuer_name(ca.subject)
              .public_key(signer_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=days))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(usage(digital_signature=True), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, digest))
    from aigc.files import atomic_write_bytes, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    atomic_write_bytes(folder / CA_FILE, ca.public_bytes(pem))
    atomic_write_bytes(folder / CHAIN_FILE, signer.public_bytes(pem) + ca.public_bytes(pem))
    atomic_write_bytes(folder / KEY_FILE, signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / KEY_FILE).chmod(0o600)
    atomic_write_text(folder / "README.txt", (
        f"DEVELOPMENT signing credentials made by `aigc keys init-signing` ({algorithm}, valid until {signer.not_valid_after_utc:%Y-%m-%d}).\n"
        "They prove nothing to anyone else: the CA is yours alone and nobody trusts it. Use them to try content\n"
        "credentials (AIGC_SIGNING_DIR=this folder) and to test verification (aigc verify FILE --trust ca.pem).\n"
        "For files others should trust, put a certificate from a real CA (keyUsage digitalSignature, EKU\n"
        "emailProtection) with its chain in signer.pem and its key in signer.key.\n"))
    return folder


# ------------------------------------------------------------------------------------------ signing


@dataclass(frozen=True)
class SigningCredentials:
    """A signer's certificate chain and private key (PEM), checked to be usable for C2PA."""

    chain_pem: bytes
    key_pem: bytes
    algorithm: str  # "es256" | "ed25519"
    subject: str
    issuer: str
    not_after: datetime.datetime
    development: bool  # made by `aigc keys init-signing`

    @classmethod
    def load(cls, folder: str | Path, field_name: str = SETTING, now: datetime.datetime | None = None) -> "SigningCredentials":
        """The credentials in a signing folder, or an AigcError on `field_name` that says what is wrong."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
        from cryptography.x509.oid import ExtendedKeyUsageOID

        folder = Path(folder)
        fix_new = f"make development credentials with `aigc keys init-signing {folder}`, or put your own {CHAIN_FILE} and {KEY_FILE} there"
        for name in (CHAIN_FILE, KEY_FILE):
            if not (folder / name).is_file():
                raise AigcError(f"{folder / name} is missing", field=field_name, fix=fix_new)
        chain_pem, key_pem = (folder / CHAIN_FILE).read_bytes(), (folder / KEY_FILE).read_bytes()
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError as error:
            raise AigcError(f"{folder / CHAIN_FILE} holds no readable PEM certificate ({error})", field=field_name, fix=fix_new) from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise AigcError(f"{folder / KEY_FILE} is not an unencrypted PEM private key ({error})", field=field_name, fix=fix_new) from None
        leaf = chain[0]
        where = f"{folder / CHAIN_FILE} (the first certificate, the signer's)"
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
            algorithm = "es256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            algorithm = "ed25519"
        else:
            raise AigcError(f"{folder / KEY_FILE} is a {type(key).__name__}; this signs with ES256 (EC P-256) or Ed25519 keys", field=field_name, fix=fix_new)
        raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if leaf.public_key().public_bytes(*raw) != key.public_key().public_bytes(*raw):
            raise AigcError(f"{folder / KEY_FILE} is not the key of the certificate in {where}", field=field_name, fix="put the signer's own key and certificate together")
        now = now or datetime.datetime.now(datetime.timezone.utc)
        if now > leaf.not_valid_after_utc:
            raise AigcError(f"the signing certificate in {where} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC", field=field_name,
                            fix=f"renew it, or make new development credentials with `aigc keys init-signing {folder} --force`")
        if now < leaf.not_valid_before_utc:
            raise AigcError(f"the signing certificate in {where} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC", field=field_name, fix="check the clock, or use a certificate valid now")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
            usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usage = usages = None
        if usage is None or not usage.digital_signature or ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages:
            raise AigcError(f"the certificate in {where} is not for signing content: C2PA needs keyUsage digitalSignature and the emailProtection extended key usage",
                            field=field_name, fix="issue a certificate with both, or use `aigc keys init-signing`")
        if len(chain) < 2:
            raise AigcError(f"{folder / CHAIN_FILE} holds the signer's certificate alone", field=field_name, fix="append its CA's certificate to the file (the chain, signer first)")
        subject = leaf.subject.rfc4514_string()
        return cls(chain_pem, key_pem, algorithm, subject, leaf.issuer.rfc4514_string(), leaf.not_valid_after_utc, DEVELOPMENT in subject)


def manifest_for(file: Any) -> dict[str, Any]:
    """The C2PA manifest definition for an encoded ArtifactFile: what made it, from its provenance record."""
    from aigc import __version__

    record = file.record

    def listed(values):  # as text: c2pa-rs reads a list of small integers back as a byte string
        return None if values is None else ",".join(map(str, values))

    parameters = {"model": record.get("model"), "checkpoint_sha256": record.get("checkpoint_sha256"), "seeds": listed(record.get("seeds")),
                  "labels": listed(record.get("labels")), "prompt": record.get("prompts"), "watermark": record.get("watermark")}
    action = {"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE, "softwareAgent": {"name": "aigc", "version": __version__},
              "parameters": {key: value for key, value in parameters.items() if value is not None}}
    return {
        "claim_generator_info": [{"name": "aigc", "version": __version__}],
        "title": f"{record.get('model', 'aigc')} seed {','.join(map(str, record.get('seeds') or []))}{file.suffix}",
        "format": file.media_type,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [action]}},
            {"label": GENERATION_ASSERTION, "data": {"record": json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)}},
        ],
    }


def sign_bytes(data: bytes, media_type: str, manifest: dict[str, Any], credentials: SigningCredentials) -> bytes:
    """`data` (a PNG, JPEG or WAV) with a manifest signed by `credentials` embedded."""
    c2pa = _c2pa()
    algorithm = c2pa.C2paSigningAlg.ES256 if credentials.algorithm == "es256" else c2pa.C2paSigningAlg.ED25519
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(algorithm, credentials.chain_pem, credentials.key_pem, None))
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    try:
        with signer, context, c2pa.Builder(manifest, context=context) as builder:
            builder.sign(signer, SIGNED_TYPES[media_type], io.BytesIO(data), out)
    except c2pa.C2paError as error:
        raise AigcError(f"c2pa refused to sign with the credentials of {credentials.subject}: {error}", field=SETTING,
                        fix="check the certificate (keyUsage digitalSignature, EKU emailProtection, its CA in signer.pem)") from None
    return out.getvalue()


@dataclass(frozen=True)
class ContentCredentials:
    """An artifact hook for `GenerationPolicy.after`: every PNG/WAV the artifact encodes (files(), save,
    save_grid) is signed with a C2PA manifest built from its provenance record."""

    credentials: SigningCredentials

    def __call__(self, artifact, request=None, info=None):
        if not hasattr(artifact, "file_hooks"):  # text has no C2PA container here
            return artifact
        return dataclasses.replace(artifact, file_hooks=(*artifact.file_hooks, self.sign))

    def sign(self, file):
        if file.media_type not in SIGNED_TYPES:
            return file
        return dataclasses.replace(file, data=sign_bytes(file.data, file.media_type, manifest_for(file), self.credentials))


def sign_checkpoint(checkpoint: str | Path, credentials: SigningCredentials) -> Path:
    """Write checkpoint/signature.json: a signature over the exact bytes of its checkpoint.json (which lists
    the sha256 of every weights file), with the signer's certificate chain; `aigc.checkpoint.signature_problem`
    checks it, and `load` requires it under AIGC_REQUIRE_SIGNATURE."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from aigc import checkpoint as ckpt
    from aigc.files import atomic_write_text

    folder = ckpt.resolve_checkpoint(checkpoint)
    ckpt.read_sidecar(folder)  # an aigc checkpoint, readable
    signed = (folder / ckpt.SIDECAR).read_bytes()
    key = serialization.load_pem_private_key(credentials.key_pem, password=None)
    signature = key.sign(signed, ec.ECDSA(hashes.SHA256())) if credentials.algorithm == "es256" else key.sign(signed)
    document = {"scheme": ckpt.SIGNATURE_SCHEME, "signed_file": ckpt.SIDECAR, "algorithm": credentials.algorithm, "signer": credentials.subject,
                "development": credentials.development, "certificates": credentials.chain_pem.decode("ascii"), "signature": base64.b64encode(signature).decode("ascii")}
    return atomic_write_text(folder / ckpt.SIGNATURE, json.dumps(document, indent=2) + "\n")


# ------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class CredentialCheck:
    state: str  # "none" (no manifest) | "Invalid" | "Valid" (intact, signer not trusted) | "Trusted" | "unchecked" (no c2pa)
    signer: str | None = None  # the signing certificate's common name and issuer, as c2pa reads them
    issuer: str | None = None
    algorithm: str | None = None
    created: dict[str, Any] = field(default_factory=dict)  # the c2pa.created action: digital source type, model, checkpoint
    failures: list[dict[str, str]] = field(default_factory=list)  # c2pa's failure codes with explanations
    error: str | None = None  # why the manifest could not be read at all

    def explain(self, trusted_list: bool) -> str:
        if self.state == "unchecked":
            return "content credentials: not checked (pip install 'aigc[c2pa]' to read C2PA manifests)."
        if self.state == "none":
            return "content credentials: none (the file carries no C2PA manifest: unsigned, or stripped)."
        if self.state == "Invalid":
            reasons = "; ".join(f"{item['code']}: {item.get('explanation', '')}" for item in self.failures if item["code"] != "signingCredential.untrusted")
            return f"content credentials: INVALID ({reasons or self.error}). The file was changed after it was signed, or the manifest is damaged: nothing it says can be relied on."
        said = (f"the manifest says it was created ({self.created.get('digitalSourceType', '?').rsplit('/', 1)[-1]}) by {self.created.get('model', '?')}, "
                f"checkpoint sha256 {str(self.created.get('checkpoint_sha256') or '?')[:16]}")
        if self.state == "Trusted":
            return f"content credentials: Trusted, signed by {self.signer} (issuer {self.issuer}, {self.algorithm}), a chain to your trust anchors; the file is unchanged since it was signed, and {said}."
        hint = "" if trusted_list else " Add --trust CA.pem (the signer's CA) to check who signed it."
        return (f"content credentials: Valid, signed by {self.signer} (issuer {self.issuer}, {self.algorithm}): the file is unchanged since "
                f"someone holding that key signed it, and {said}; the signer's certificate is not in the trust list, so it does not prove who they are.{hint}")


def read_credentials(data: bytes, media_type: str, trust_pem: bytes | None = None) -> CredentialCheck:
    """The C2PA manifest in `data` checked: signature, hashes of the file's bytes, and (with `trust_pem`,
    CA certificates in PEM) whether the signer chains to a trust anchor."""
    try:
        c2pa = _c2pa()
    except AigcError:
        return CredentialCheck("unchecked")
    settings: dict[str, Any] = {"verify": {"verify_trust": trust_pem is not None}}
    if trust_pem is not None:
        settings["trust"] = {"trust_anchors": trust_pem.decode("ascii", "replace")}
    try:
        with c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader.try_create(media_type, io.BytesIO(data), None, context)
            if reader is None:
                return CredentialCheck("none")
            with reader:
                state = reader.get_validation_state() or "Invalid"
                results = (reader.get_validation_results() or {}).get("activeManifest", {})
                manifest = reader.get_active_manifest() or {}
    except c2pa.C2paError as error:  # the manifest store itself is damaged
        return CredentialCheck("Invalid", error=str(error))
    created: dict[str, Any] = {}
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                if action.get("action") == "c2pa.created":
                    created = {"digitalSourceType": action.get("digitalSourceType"), **action.get("parameters", {})}
    info = manifest.get("signature_info", {})
    failures = [{"code": item.get("code", "?"), "explanation": item.get("explanation", "")} for item in results.get("failure", [])]
    return CredentialCheck(state, info.get("common_name"), info.get("issuer"), info.get("alg"), created, failures)

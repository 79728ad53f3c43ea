"""API keys: `aigc_<prefix>_<secret>`, shown once; the database keeps the prefix and a sha256 of the key.

The secret is 256 random bits, so a plain sha256 is enough (a slow password hash protects guessable
secrets, which these are not); comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from aigc.errors import AigcError
from aigc.studio.db.models import Account, ApiKey, utcnow
from aigc.studio.db.session import Database


@dataclass(frozen=True)
class KeyOwner:
    key_id: int
    account_id: int
    account: str
    name: str
    rate_limit_per_minute: int | None
    queue_limit: int | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(db: Database, name: str, *, account: str | None = None, rate_limit_per_minute: int | None = None, queue_limit: int | None = None) -> tuple[str, ApiKey]:
    """A new key for `account` (created when new; default: the key's name). Returns (the key, its row)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AigcError("a key needs a name of 1 to 100 characters", field="NAME")
    prefix = secrets.token_hex(4)
    key = f"aigc_{prefix}_{secrets.token_urlsafe(32)}"
    with db.session() as session:
        owner = session.scalar(select(Account).where(Account.name == (account or name)))
        if owner is None:
            owner = Account(name=account or name)
            session.add(owner)
            session.flush()
        row = ApiKey(account_id=owner.id, name=name, prefix=prefix, key_hash=hash_key(key), rate_limit_per_minute=rate_limit_per_minute, queue_limit=queue_limit)
        session.add(row)
        session.commit()
        session.refresh(row)
    return key, row


def verify_key(db: Database, key: str) -> KeyOwner | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "aigc" or len(parts[1]) != 8:
        return None
    digest = hash_key(key)
    with db.session() as session:
        for row in session.scalars(select(ApiKey).where(ApiKey.prefix == parts[1], ApiKey.revoked_at.is_(None))):
            if hmac.compare_digest(row.key_hash, digest):
                now = utcnow()
                if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
                    row.last_used_at = now  # at most one write a minute per key
                    session.commit()
                return KeyOwner(row.id, row.account_id, row.account.name, row.name, row.rate_limit_per_minute, row.queue_limit)
    return None


def list_keys(db: Database) -> list[dict]:
    with db.session() as session:
        return [
            {"id": row.id, "name": row.name, "account": row.account.name, "prefix": row.prefix, "created_at": row.created_at, "last_used_at": row.last_used_at, "revoked": row.revoked_at is not None,
             "rate_limit_per_minute": row.rate_limit_per_minute, "queue_limit": row.queue_limit}
            for row in session.scalars(select(ApiKey).order_by(ApiKey.id))
        ]


def revoke_key(db: Database, prefix_or_id: str) -> int:
    """Revoke by prefix (as `keys list` shows it) or, when no prefix matches, by numeric id.
    (A prefix is 8 hex digits and may be all digits, so the prefix is tried first.)"""
    with db.session() as session:
        active = select(ApiKey).where(ApiKey.revoked_at.is_(None))
        rows = session.scalars(active.where(ApiKey.prefix == prefix_or_id)).all()
        if not rows and prefix_or_id.isdigit() and len(prefix_or_id) < 12:
            rows = session.scalars(active.where(ApiKey.id == int(prefix_or_id))).all()
        for row in rows:
            row.revoked_at = utcnow()
        session.commit()
        return len(rows)

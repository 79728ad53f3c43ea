"""Personal data scrubbing (aigc/safety/privacy.py): each kind found with its checksum, harmless numbers
left alone, and a log handler that never writes the data."""

from __future__ import annotations

import io
import logging

import pytest

from aigc.safety.privacy import cn_id_valid, find_personal_data, luhn_valid, scrub, scrub_logs


@pytest.mark.parametrize("text, kind", [
    ("ann.lee+tag@example.co.uk", "email"),
    ("13800138000", "phone"), ("138 0013 8000", "phone"), ("+86 138-0013-8000", "phone"), ("(415) 555-0142", "phone"),
    ("+44 20 7946 0958", "phone"),
    ("11010519491231002X", "cn_id"), ("4111 1111 1111 1111", "card"), ("5500-0000-0000-0004", "card"),
    ("6222020200000000006", "card"),
    ("192.168.1.20", "ip"), ("2001:db8::1", "ip"),
])
def test_each_kind_is_found(text, kind):
    found = find_personal_data(f"x {text} y")
    assert [(item.kind, item.text) for item in found] == [(kind, text)]


def test_checksums_keep_harmless_numbers():
    assert cn_id_valid("11010519491231002X") and not cn_id_valid("110105194912310021")  # wrong check character
    assert not cn_id_valid("110105194913310025")  # month 13
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    for text in ("7 cats in 2024", "version 1.2.3", "999.1.1.1 is not an address", "at 12:30:45", "1234567890123", "order 4111111111111112"):
        assert find_personal_data(text) == [], text


def test_scrub_replaces_each_with_its_placeholder():
    text = "mail ann@example.com, call 13912345678, ID 11010519491231002X, card 4111-1111-1111-1111, from 10.0.0.7. 谢谢"
    assert scrub(text) == "mail [email], call [phone], ID [cn-id], card [card], from [ip]. 谢谢"
    assert scrub("a handwritten seven") == "a handwritten seven"


def test_a_scrubbing_handler_never_writes_the_data():
    stream = io.StringIO()
    handler = scrub_logs(logging.StreamHandler(stream))
    scrub_logs(handler)  # twice is once
    assert len(handler.filters) == 1
    logger = logging.getLogger("aigc.test_privacy")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("job for %s with prompt %r", "ann@example.com", "call me on 13912345678")
        logger.info("plain message")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "ann@example.com" not in written and "13912345678" not in written
    assert "[email]" in written and "[phone]" in written and "plain message" in written

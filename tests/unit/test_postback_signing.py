"""The postback signature of contract section 4, and the receiver's check."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mmsgate.postbacks import sign, verify

BODY = b'{"origin":"MMS_MT","code":"N101","tracking-id":"t-1"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = sign("s3cret", BODY, timestamp=1_780_000_000)
    expected = hmac.new(b"s3cret", b"1780000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1780000000,v1={expected}"


def test_a_valid_signature_verifies() -> None:
    header = sign("s3cret", BODY, timestamp=1_780_000_000)
    assert verify("s3cret", header, BODY, now=1_780_000_010)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("other", BODY, 1_780_000_010),  # wrong secret
        ("s3cret", BODY + b" ", 1_780_000_010),  # body changed
        ("s3cret", BODY, 1_780_000_000 + 301),  # too old: a replay
        ("s3cret", BODY, 1_780_000_000 - 301),  # from the future
    ],
)
def test_anything_else_does_not(secret: str, body: bytes, now: float) -> None:
    assert not verify(secret, sign("s3cret", BODY, timestamp=1_780_000_000), body, now=now)


@pytest.mark.parametrize("header", [None, "", "garbage", "t=abc,v1=00", "v1=00", "t=1780000000", "t=1780000000,v1="])
def test_malformed_headers_are_refused_without_raising(header: str | None) -> None:
    assert not verify("s3cret", header, BODY, now=1_780_000_000)


def test_any_of_several_signatures_may_match_during_secret_rotation() -> None:
    old = sign("old", BODY, timestamp=1_780_000_000).split("v1=")[1]
    new = sign("new", BODY, timestamp=1_780_000_000)
    assert verify("old", f"{new},v1={old}", BODY, now=1_780_000_000)

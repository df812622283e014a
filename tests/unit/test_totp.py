"""TOTP arithmetic (RFC 6238 test vector, the ±1 step window, input tolerance) and the QR code
as self-contained SVG."""

from __future__ import annotations

import base64

import pyotp

from tollway.services.totp import STEP_S, code_for_step, matching_step, provisioning_uri, qr_svg

# RFC 6238 appendix B: the SHA-1 secret is the ASCII "12345678901234567890"; at T=59 s the
# 8-digit code is 94287082, so the 6-digit code is its last six digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


def test_rfc6238_vector() -> None:
    assert code_for_step(RFC_SECRET, 59 // STEP_S) == "287082"
    assert matching_step(RFC_SECRET, "287082", now=59) == 1


def test_window_is_one_step_either_side() -> None:
    secret = pyotp.random_base32()
    now = 1_700_000_000.0
    here = int(now // STEP_S)
    for offset in (-1, 0, 1):
        assert matching_step(secret, code_for_step(secret, here + offset), now=now) == here + offset
    for offset in (-2, 2):
        code = code_for_step(secret, here + offset)
        if all(code != code_for_step(secret, here + o) for o in (-1, 0, 1)):  # a 1-in-10^6 collision
            assert matching_step(secret, code, now=now) is None


def test_input_is_tolerant_of_spaces_and_strict_otherwise() -> None:
    secret = pyotp.random_base32()
    now = 1_700_000_000.0
    code = code_for_step(secret, int(now // STEP_S))
    assert matching_step(secret, f" {code[:3]} {code[3:]} ", now=now) is not None
    for bad in ("", "12345", "1234567", "abcdef", code + "0"):
        assert matching_step(secret, bad, now=now) is None


def test_qr_is_inline_svg_naming_the_account_and_nothing_outside() -> None:
    uri = provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "ops@example.com")
    assert uri.startswith("otpauth://totp/Tollway:ops%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert "issuer=Tollway" in uri
    svg = qr_svg(uri)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "http" not in svg and "href" not in svg and "style=" not in svg  # CSP: nothing to load

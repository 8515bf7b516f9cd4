"""The token format: ``ag_`` + 40 base62 + 6 base62 CRC32, checked offline."""

from __future__ import annotations

import hashlib
import math
import re
import string
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from authgate.credentials.tokens import digest, digest_bytes, generate_token, hint, is_well_formed

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
SHAPE = re.compile(r"ag_([0-9A-Za-z]{40})([0-9A-Za-z]{6})")

secrets_40 = st.text(alphabet=ALPHABET, min_size=40, max_size=40)
quick = settings(max_examples=300, deadline=None, database=None)


def expected_checksum(secret: str) -> str:
    """CRC32 of the secret in six base62 digits, most significant first."""
    number = zlib.crc32(secret.encode("ascii"))
    digits = []
    for _ in range(6):
        number, remainder = divmod(number, 62)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


def make_token(secret: str) -> str:
    return f"ag_{secret}{expected_checksum(secret)}"


def test_generated_token_has_the_documented_shape_and_checksum() -> None:
    generated = generate_token()
    match = SHAPE.fullmatch(generated.token)
    assert match is not None, generated.token
    secret, checksum = match.groups()
    assert checksum == expected_checksum(secret)
    assert len(generated.token) == 3 + 40 + 6


def test_secret_carries_at_least_190_bits() -> None:
    # 40 characters drawn uniformly from 62 symbols.
    assert 40 * math.log2(62) >= 190
    tokens = [generate_token().token for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)
    # Every symbol of the alphabet turns up: the draw is not from a narrower alphabet
    # than advertised (80,000 draws; a missing symbol would be a 1-in-10^500 event).
    used = {char for token in tokens for char in SHAPE.fullmatch(token).group(1)}  # type: ignore[union-attr]
    assert used == set(ALPHABET)


def test_digest_is_sha256_of_the_whole_token_and_hint_is_short() -> None:
    generated = generate_token()
    assert generated.digest == hashlib.sha256(generated.token.encode()).hexdigest()
    assert generated.digest == digest(generated.token)
    assert generated.hint == hint(generated.token)
    assert generated.hint == generated.token[:7] + "…"
    # The hint leaves almost all of the secret unknown.
    assert len(generated.hint.rstrip("…")) - len("ag_") == 4


@given(st.binary(max_size=300))
def test_the_digest_is_hashlibs_sha256(data: bytes) -> None:
    """Every stored digest is what hashlib computes, for text and for raw header bytes."""
    assert digest_bytes(data) == hashlib.sha256(data).hexdigest()
    text = data.decode("latin-1")
    assert digest(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_generated_tokens_are_well_formed() -> None:
    for _ in range(200):
        assert is_well_formed(generate_token().token)


def test_custom_prefix() -> None:
    token = generate_token("svc").token
    assert token.startswith("svc_")
    assert is_well_formed(token, "svc")
    assert not is_well_formed(token)


def test_wrong_prefix_refused() -> None:
    token = generate_token().token
    body = token[3:]
    for bad in ("gh_" + body, "AG_" + body, "ag-" + body, "agx_" + body, "_" + body, body):
        assert not is_well_formed(bad), bad


def test_wrong_alphabet_refused() -> None:
    secret = "A" * 39 + "-"
    # A correct CRC over a secret with a character outside base62 is still refused.
    assert not is_well_formed(make_token(secret))
    assert not is_well_formed(make_token("A" * 40)[:-1] + "+")
    token = generate_token().token
    for char in "-+/=_. é\x00":
        assert not is_well_formed(token[:10] + char + token[11:]), repr(char)


def test_wrong_length_refused() -> None:
    token = generate_token().token
    assert not is_well_formed(token[:-1])
    assert not is_well_formed(token + "A")
    assert not is_well_formed("ag_")
    assert not is_well_formed("")
    # Well-formed checksum over a shorter or longer secret.
    assert not is_well_formed(make_token("A" * 39))
    assert not is_well_formed(make_token("A" * 41))


def test_wrong_checksum_refused() -> None:
    token = generate_token().token
    secret, checksum = token[3:43], token[43:]
    other = "0" if checksum[-1] != "0" else "1"
    assert not is_well_formed(f"ag_{secret}{checksum[:-1]}{other}")
    if checksum != "000000":
        assert not is_well_formed(f"ag_{secret}000000")


@quick
@given(secrets_40)
def test_any_valid_token_is_accepted(secret: str) -> None:
    assert is_well_formed(make_token(secret))


def _mutations(draw: st.DrawFn) -> tuple[str, str]:
    token = make_token(draw(secrets_40))
    kind = draw(st.sampled_from(["replace", "delete", "insert", "swap_case", "prefix"]))
    position = draw(st.integers(min_value=0, max_value=len(token) - 1))
    if kind == "replace":
        new = draw(st.characters(codec="utf-8").filter(lambda c: c != token[position]))
        return token, token[:position] + new + token[position + 1 :]
    if kind == "delete":
        return token, token[:position] + token[position + 1 :]
    if kind == "insert":
        return token, token[:position] + draw(st.characters(codec="utf-8")) + token[position:]
    if kind == "swap_case":
        index = draw(st.sampled_from([i for i, c in enumerate(token) if c.isalpha()] or [position]))
        return token, token[:index] + token[index].swapcase() + token[index + 1 :]
    prefix = draw(st.text(alphabet=string.ascii_letters + "_", min_size=0, max_size=4))
    return token, prefix + token[3:] if prefix != "ag_" else "x" + token[3:]


mutated_tokens = st.composite(_mutations)()


@quick
@given(mutated_tokens)
def test_any_single_mutation_of_a_valid_token_is_refused(pair: tuple[str, str]) -> None:
    original, mutated = pair
    assert mutated != original
    assert is_well_formed(original)
    # One changed character is at most an 8-bit burst, which CRC32 always detects;
    # insertions, deletions and prefix changes alter the length or the prefix.
    assert not is_well_formed(mutated)


@quick
@given(st.text(max_size=60))
def test_random_text_is_refused(text: str) -> None:
    match = SHAPE.fullmatch(text)
    expected = match is not None and match.group(2) == expected_checksum(match.group(1))
    assert is_well_formed(text) is expected

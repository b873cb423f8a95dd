"""Secrets never reach the index, and redaction leaves ordinary text searchable."""

from __future__ import annotations

import random
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.secrets_corpus import FALSE_POSITIVE_SAMPLES, PLANTED, PlantedSecret, all_secret_values

from indexer.errors import ConfigError
from indexer.redact import KINDS, Redaction, Redactor, placeholder

UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
GIT_SHA = re.compile(r"\b[0-9a-f]{7,40}\b")
PATH = re.compile(r"(?:~|/home|/usr|/var|/tmp|/work)[\w./-]*")
LEAK_WINDOW = 12


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def leaked_pieces(value: str, text: str) -> list[str]:
    """Every LEAK_WINDOW-character piece of `value` still present in `text`."""
    width = min(LEAK_WINDOW, len(value))
    return [value[i : i + width] for i in range(len(value) - width + 1) if value[i : i + width] in text]


def test_corpus_is_large_and_well_formed() -> None:
    """The corpus plants enough secrets, each inside its text, in every built-in kind."""
    assert len(PLANTED) >= 40
    assert all(planted.value in planted.text for planted in PLANTED)
    assert {planted.kind for planted in PLANTED} == set(KINDS)
    assert all_secret_values() == [planted.value for planted in PLANTED]


def test_corpus_is_deterministic() -> None:
    """Re-importing the corpus builds the same values: the seeds, not the clock, decide them."""
    import importlib

    from support import secrets_corpus

    assert importlib.reload(secrets_corpus).all_secret_values() == all_secret_values()


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: f"{p.kind}:{p.text[:30]}")
def test_planted_secret_is_removed(redactor: Redactor, planted: PlantedSecret) -> None:
    """No 12-character piece of the secret survives, and the placeholder names its kind."""
    result = redactor.redact(planted.text)
    assert leaked_pieces(planted.value, result.text) == []
    assert placeholder(planted.kind) in result.text
    assert result.counts.get(planted.kind, 0) >= 1


def test_all_secrets_in_one_text_are_removed(redactor: Redactor) -> None:
    """Secrets of every kind side by side, as in one long session, are all removed."""
    text = "\n\n".join(planted.text for planted in PLANTED)
    result = redactor.redact(text)
    for value in all_secret_values():
        assert leaked_pieces(value, result.text) == []
    assert sum(result.counts.values()) >= len(PLANTED)


def test_surrounding_text_stays_searchable(redactor: Redactor) -> None:
    """Only the password leaves a connection URL; the user, host and error stay."""
    planted = next(p for p in PLANTED if p.kind == "url_password" and "postgresql://" in p.text)
    text = redactor.redact_text(planted.text)
    assert "postgresql://app_user:[REDACTED:url_password]@db.internal:5432/app" in text
    assert "psycopg2.OperationalError" in text


@pytest.mark.parametrize("sample", FALSE_POSITIVE_SAMPLES, ids=lambda s: s[:40])
def test_ordinary_text_is_unchanged(redactor: Redactor, sample: str) -> None:
    """Code and logs with ids, hashes, paths and secret-sounding words come out byte for byte."""
    result = redactor.redact(sample)
    assert result.text == sample
    assert result.counts == {}


def test_ids_hashes_and_paths_survive(redactor: Redactor) -> None:
    """UUIDs, git SHAs and file paths in the samples are all still there after redaction."""
    text = "\n".join(FALSE_POSITIVE_SAMPLES)
    found = [*UUID.findall(text), *GIT_SHA.findall(text), *PATH.findall(text)]
    assert len(found) >= 20
    redacted = redactor.redact_text(text)
    assert [item for item in found if item not in redacted] == []


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("the password is required", "password is required"),
        ("token_count=12 max_tokens=4096 primary_key=True", "token_count=12"),
        ("KEYBOARD=us sort_key=name keys=[a, b]", "KEYBOARD=us"),
        ("image: ghcr.io/acme/api@sha256:4bc453b53cb3d914b45f4b250294236adba2c0e09ff6f03793949e7e39fd4cc1", "sha256:4bc4"),
        ("fixed in 9fceb02d0ae598e95dc970b74767f19372d61af8, see /home/dev/app/auth/token.py", "9fceb02d0ae5"),
    ],
)
def test_secret_words_in_prose_and_code_are_kept(redactor: Redactor, text: str, kept: str) -> None:
    assert kept in redactor.redact_text(text)


def test_redaction_is_idempotent(redactor: Redactor) -> None:
    """Redacting already-redacted text changes nothing and counts nothing."""
    for text in [planted.text for planted in PLANTED] + FALSE_POSITIVE_SAMPLES:
        once = redactor.redact_text(text)
        again = redactor.redact(once)
        assert again.text == once
        assert again.counts == {}


_FRAGMENTS = [
    *(planted.value for planted in PLANTED[::3]),
    "password",
    "API_KEY",
    "token",
    "key",
    "secret",
    "Authorization: Bearer ",
    "://user:",
    "@host",
    "=",
    ": ",
    '"',
    "'",
    " is ",
    "\n",
    "\n\n",
    " ",
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "[REDACTED:secret]",
    "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f",
    "hunter2xyz!",
    "AbC123dEf456GhI789jKl0",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=12))
def test_any_mix_of_secrets_and_names_redacts_idempotently(pieces: list[str]) -> None:
    redactor = Redactor()
    once = redactor.redact_text("".join(pieces))
    assert redactor.redact_text(once) == once


def test_a_token_glued_to_a_long_run_of_text_is_still_redacted() -> None:
    """A length cap on a token's tail let a PAT followed by 256+ word characters through, and the
    same token glued before a webhook URL took its "https" and hid the URL from its rule."""
    pat = "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"
    hook = "https://hooks.slack.com/services/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"
    redactor = Redactor()
    glued = redactor.redact_text(pat + "x" * 300)
    assert "YXEG9TECIQ" not in glued and glued.startswith("[REDACTED:github_token]")
    before_url = redactor.redact_text(pat + pat + hook)
    assert "YXEG9TECIQ" not in before_url and "GF9cT7kRHwTu0" not in before_url
    assert redactor.redact_text(before_url) == before_url


def test_extra_patterns_redact_with_their_own_kind() -> None:
    """A user pattern's `secret` group (else the whole match) becomes [REDACTED:<name>]."""
    redactor = Redactor({"acme_key": r"acme_[0-9a-f]{32}", "internal_pin": r"PIN (?P<secret>\d{6})"})
    result = redactor.redact("key acme_0123456789abcdef0123456789abcdef and PIN 493817 today")
    assert result.text == "key [REDACTED:acme_key] and PIN [REDACTED:internal_pin] today"
    assert result.counts == {"acme_key": 1, "internal_pin": 1}


def test_extra_patterns_run_alongside_the_built_in_rules() -> None:
    planted = next(p for p in PLANTED if p.kind == "github_token")
    redactor = Redactor({"ticket": r"TICKET-\d{5}"})
    text = redactor.redact_text(f"TICKET-12345: {planted.text}")
    assert "[REDACTED:ticket]" in text
    assert leaked_pieces(planted.value, text) == []


def test_bad_user_regex_raises_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="corp_token"):
        Redactor({"corp_token": r"corp_[a-z"})


@pytest.mark.parametrize(("name", "regex"), [("everything", r"x*"), ("bad name!", r"abc"), ("", r"abc")])
def test_unusable_user_patterns_raise_config_error(name: str, regex: str) -> None:
    """A pattern that matches nothing-at-all, or a name that cannot be a placeholder kind, is refused."""
    with pytest.raises(ConfigError):
        Redactor({name: regex})


def test_redact_returns_text_and_counts(redactor: Redactor) -> None:
    jwt_text = next(p.text for p in PLANTED if p.kind == "jwt")
    result = redactor.redact(jwt_text)
    assert isinstance(result, Redaction)
    assert result.counts == {"jwt": 1}
    assert redactor.redact_text(jwt_text) == result.text


def test_truncated_private_key_is_redacted_to_the_blank_line(redactor: Redactor) -> None:
    """A key block cut off without its END line goes up to the next blank line, not beyond."""
    planted = next(p for p in PLANTED if p.kind == "private_key" and "openssl ec" in p.text)
    text = redactor.redact_text(planted.text)
    assert "-----BEGIN" not in text
    assert "$ openssl ec -in certs/server.key -noout" in text


def test_a_megabyte_of_ordinary_text_runs(redactor: Redactor) -> None:
    """A large secret-free text is processed (timings are measured elsewhere, not asserted)."""
    rng = random.Random(7)
    words = ["def", "return", "token", "key", "value", "password", "self", "config", "=", ":", "(", ")", "\n"]
    chunks: list[str] = []
    size = 0
    while size < 1_000_000:
        chunk = rng.choice(
            [
                " ".join(rng.choice(words) for _ in range(12)),
                "".join(rng.choice(string.ascii_lowercase) for _ in range(40)),
                f"{rng.getrandbits(160):040x}",
                rng.choice(FALSE_POSITIVE_SAMPLES),
            ]
        )
        chunks.append(chunk)
        size += len(chunk) + 1
    text = "\n".join(chunks)
    result = redactor.redact(text)
    assert len(result.text) > 900_000


def test_a_password_keeps_no_trailing_symbol(redactor: Redactor) -> None:
    """`!` ending a password is part of it; a sentence's full stop is not."""
    assert redactor.redact_text("set DB_PASSWORD=Winter2025!") == "set DB_PASSWORD=[REDACTED:password]"
    assert redactor.redact_text("the password is Winter2025!.") == "the password is [REDACTED:password]."


def test_text_that_grows_when_lower_cased_is_redacted_in_place(redactor: Redactor) -> None:
    """İ lower-cases to two characters; the case-insensitive rules must still cut at the right place."""
    secrets = {kind: next(p.value for p in PLANTED if p.kind == kind) for kind in ("bearer_token", "aws_secret_key")}
    text = (
        f"İSTANBUL ofisi İİİ: Authorization: Bearer {secrets['bearer_token']} İ\n"
        f"AWS_SECRET_ACCESS_KEY={secrets['aws_secret_key']} İ\nDB_PASSWORD=s3cretPg2024 İ"
    )
    redacted = redactor.redact_text(text)
    assert redacted == (
        "İSTANBUL ofisi İİİ: Authorization: Bearer [REDACTED:bearer_token] İ\n"
        "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_key] İ\nDB_PASSWORD=[REDACTED:password] İ"
    )


_ASSIGNMENT_FORMS = (
    "API_TOKEN={}",
    "password: {}",
    '"client_secret": "{}"',
    "export DB_PASSWORD='{}'",
    "--token {}",
    "the password is {}",
)


def test_generated_secrets_after_secret_names_are_redacted(redactor: Redactor) -> None:
    """Whatever a random token happens to look like, after a secret's name it is redacted.

    Tokens of 12-40 characters with upper, lower and digits, as generators make them; the
    word and class-name heuristics may let through at most 0.5% of them.
    """
    rng = random.Random(20240521)
    alphabets = (string.ascii_letters + string.digits, string.ascii_letters + string.digits + "!%^*-_+=~")
    missed = []
    for _ in range(1200):
        token = "".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.randint(12, 40)))
        if not (any(c.isupper() for c in token) and any(c.islower() for c in token) and any(c.isdigit() for c in token)):
            continue
        text = rng.choice(_ASSIGNMENT_FORMS).format(token)
        if leaked_pieces(token, redactor.redact_text(text)):
            missed.append(text)
    assert len(missed) <= 6, missed

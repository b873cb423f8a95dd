"""Remove secrets from text before it is embedded or stored: nothing secret reaches the index.

Each secret is replaced by a typed placeholder, `[REDACTED:<kind>]`, so a search for
"the github token that failed" still finds the turn while the token itself is gone.

Rules run in a fixed order, most specific first:

    user patterns     Redactor(extra_patterns={"acme_key": r"acme_[0-9a-f]{32}"})
    private_key       PEM / OpenSSH / PGP private-key blocks; a block cut off without its
                      END line runs to the next blank line or the end of the text
    provider tokens   jwt, anthropic_key, openai_key, github_token, gitlab_token, slack_token,
                      slack_webhook, stripe_key, google_api_key, aws_access_key_id, npm_token,
                      pypi_token, huggingface_token
    in context        aws_secret_key (40 chars after aws_secret_access_key & co.),
                      url_password (scheme://user:PASSWORD@host keeps user and host),
                      basic_auth and bearer_token (Authorization headers; "Bearer <random token>"),
                      password (curl -u user:PASSWORD)
    assignments       password / secret: `NAME=value`, `NAME: value`, `"name": "value"`,
                      `export NAME=value`, `--name value`, "the password is ...", and a
                      high-entropy token right after such a name

A name counts when its last word says secret, token, key, password (pwd, passwd, pass),
credential or auth: `DB_PASSWORD`, `clientSecret`, `x-api-key`, but not `token_count`,
`primary_key`, `key_path` or `max_tokens`. Its value counts when it looks generated:
8+ characters mixing letters with digits or symbols, or long and high-entropy; not a word,
number, path, URL, version, digest, reference such as `${VAR}` or `<your-key>`, or code.

Every rule leaves our own placeholders alone, so redacting twice changes nothing.

Deliberately not caught, because catching it would redact ordinary code and logs:
    - a secret with no known format and no secret-sounding name right before it
      ("log in with Zx9Qw8Er7T" in prose, a token alone on a line);
    - words as values: passphrases with spaces, snake_case or camelCase identifiers, and
      letters-only values under 20 characters whose case does not flip like a random
      string's (`Jiuetkiq`, `MySecretPassword`); values under 8 characters (6 after a
      password name);
    - after a lone `key` (`key=...`, "cache key: ..."), anything but a 20+ character random token;
    - hex strings and UUIDs after a secret word with no `=` or `:` ("token 3f2a9c..."):
      they look exactly like commit SHAs and request ids;
    - unquoted values that read as code: `password=get_pw()`, `token=self.token`;
    - `auth=("user", "pw")`, `mysql -pPASSWORD`, `<password>x</password>`, cookies
      (`Cookie: session=...`), and provider formats not listed above unless a name flags them;
    - secrets split across lines, other than private-key blocks.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from indexer.errors import ConfigError

__all__ = ["KINDS", "Redaction", "Redactor", "placeholder"]

_PLACEHOLDER_PREFIX = "[REDACTED:"
_NAME_OK = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def placeholder(kind: str) -> str:
    """The text that stands in for a secret of this kind."""
    return f"{_PLACEHOLDER_PREFIX}{kind}]"


@dataclass(frozen=True)
class Redaction:
    """Redacted text, and how many secrets of each kind were replaced."""

    text: str
    counts: dict[str, int]


# --- what a value looks like ------------------------------------------------------

_REFERENCE = re.compile(
    r"""\[REDACTED:[\w.-]+\]           # ours, from an earlier pass
      | .*\$\{[A-Za-z_]\w*(?:[:?+=-][^}]*)?\}.*   # ${VAR}, ${VAR:-default}
      | (?:.*\s)?\$\([a-z][\w-]*(?:[ )].*)?   # $(gh auth token), at the start or after a space
      | .*(?:\{\{|\{%).*                # {{ template }}, {% tag %}
      | \$[A-Za-z_]\w*                 # $VAR
      | %\(\w+\)s | %s
      | <[^<>]*>                       # <your-api-key>
      | .*\{[A-Za-z_][^{}]*\}.*         # f-string or format field
    """,
    re.X | re.S,
)
_MASKED = re.compile(r"[xX*•._#-]+|.*(?:xxxx|XXXX|\*\*\*|\.\.\.).*", re.S)
_DUMMY_WORDS = ("your", "changeme", "change_me", "placeholder", "example", "redacted", "dummy", "replace")
_DUMMY_VALUES = frozenset({"password", "passwd", "secret", "token", "pass", "pwd", "apikey", "api_key"})
_LITERALS = frozenset({"true", "false", "null", "none", "nil", "yes", "no", "on", "off", "undefined", "nan"})

_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,_:]\d+)*(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)")
_ABS_PATH = re.compile(r"(?:~|\.{1,2})?/|[A-Za-z]:\\|\\\\")
_REL_PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)+|[\w.-]+(?:\\[\w.-]+)+")  # a/b/c.txt, SOFTWARE\Microsoft
_FILE_EXT = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,5}")
_DOTTED_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:[?!]?\.[A-Za-z_$][\w$]*)+")  # also options?.token
_CODE_SHAPE = re.compile(r"[\w.$]*[(\[]|[{\[(]")
_BRACKETS = re.compile(r"[()\[\]{}<>]")
_CAMEL_WORD = re.compile(r"[A-Z][a-z]{2,}")
_WORDS = re.compile(r"[#@:_-]*[A-Za-z]+(?:[_-]+[A-Za-z]+)*[_-]*")  # letters only; also "#document", "_private"
_SNAKE_WORDS = re.compile(r"[a-z]+(?:_[a-z0-9]+)+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NOT_SECRET_SHAPE = re.compile(
    r"""(?:sha\d+|md5)[:-].*                            # sha256:..., npm integrity
      | v?\d+(?:\.\d+)+(?:[-+.][\w.]*)?                 # versions
      | ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-nistp\d+     # key types
    """,
    re.X | re.S,
)
# Ids that are everywhere in logs: next to a bare secret word they are not taken for one.
_ID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{7,64}")
_KEBAB = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/_.~-]+=*")
_SEPARATORS = re.compile(r"[-_./:]")
# a slug part: a word, camelCase words, an acronym, BASE64 or sha256, digits, hex, a short x86
_SIMPLE_PART = re.compile(r"[a-z]+(?:[A-Z][a-z]+)*|(?:[A-Z][a-z]+)+|[A-Z]+\d*|[a-z]+\d+|\d+|[0-9a-f]+|[a-z0-9]{0,4}")


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _is_reference(value: str) -> bool:
    """A variable, a template field or one of our placeholders: not a secret itself."""
    return bool(_REFERENCE.fullmatch(value))


def _is_dummy(value: str) -> bool:
    """A documentation stand-in such as `xxxx`, `<your-key>` or `changeme`."""
    lowered = value.lower()
    return (
        _is_reference(value)
        or bool(_MASKED.fullmatch(value))
        or lowered in _DUMMY_VALUES
        or any(word in lowered for word in _DUMMY_WORDS)
    )


def _wordy(value: str) -> bool:
    """Letters that read as words rather than a random string's case flips.

    One case throughout, a few camelCase parts of 3+ letters or acronyms (`csrfToken`,
    `DHPrivateKey`), or parts that all have vowels (`MySecretPassword`). `yIgKpaUn` and
    `LaMRTvet` are not wordy.
    """
    letters = value.strip("#@:_-")
    if letters.islower() or letters.isupper() or letters.istitle():
        return True
    parts = _NAME_PART.findall(letters)
    if len(parts) <= 4 and all(len(part) >= 3 or (len(part) >= 2 and part.isupper()) for part in parts):
        return True
    return all(len(part) >= 2 and any(c in "aeiouyAEIOUY" for c in part) for part in parts)


def _is_structured(value: str) -> bool:
    """Words, numbers and hashes joined by separators: a slug or a cache key, not a secret.

    `setup-uv-1-x86_64-unknown-linux-gnu-0.7.13-f6c65b29...` is one; a generated secret
    has long parts that mix cases and digits.
    """
    parts = _SEPARATORS.split(value)
    return len(parts) >= 3 and all(_SIMPLE_PART.fullmatch(part) for part in parts)


def _is_path_or_url(value: str) -> bool:
    if "://" in value or _ABS_PATH.match(value):
        return True
    # Relative paths: a secret with slashes is base64, which has capitals and no extension.
    if _REL_PATH.fullmatch(value):
        return "\\" in value or bool(_FILE_EXT.search(value[-7:])) or value == value.lower()
    return False


def _classes(value: str) -> tuple[bool, bool, bool, bool]:
    """Whether the value has lower-case letters, upper-case letters, digits, other symbols."""
    lower = upper = digit = other = False
    for char in value:
        if char.islower():
            lower = True
        elif char.isupper():
            upper = True
        elif char.isdigit():
            digit = True
        elif char not in "_-.":  # identifier punctuation says nothing about randomness
            other = True
    return lower, upper, digit, other


def _random_like(value: str) -> bool:
    """Two or more character classes, and not lower-case words: a generated token."""
    lower, upper, digit, _ = _classes(value)
    if lower + upper + digit < 2:
        return False
    return upper or not _KEBAB.fullmatch(value)


def _is_code(value: str, quoted: bool, typed: bool = False) -> bool:
    """An expression, a class name or an assignment rather than a literal.

    `typed`: the value sits where a type annotation would, `name: Value |` or `name: Value,`.
    """
    if _DOTTED_NAME.fullmatch(value) or _CODE_SHAPE.match(value):
        return True
    if not quoted and _BRACKETS.search(value):
        return True  # token=token).sha, *(optional)*, z.infer<typeof X>
    # V1SecretVolumeSource, _HashedAttributes, Ed448PrivateKey: class names, not secrets. Their
    # words have vowels; a random token's capitalised chunks (Kjd, Bvw) mostly do not. Outside
    # a type's position it takes three such words of 4+ letters covering most of the value.
    words = [word for word in _CAMEL_WORD.findall(value) if any(c in "aeiouy" for c in word)]
    if typed:
        return len(words) >= 1 and sum(map(len, words)) >= 0.5 * sum(c.isalpha() for c in value)
    long_words = [word for word in words if len(word) >= 4]
    return len(long_words) >= 3 and sum(map(len, long_words)) >= 0.7 * len(value)


def _looks_secret(value: str, min_len: int = 8, quoted: bool = True, typed: bool = False) -> bool:
    """Whether a value assigned to a secret-sounding name is itself secret-looking."""
    if len(value) < min_len or " " in value or value.lower() in _LITERALS or _is_code(value, quoted, typed):
        return False
    if _is_dummy(value) or _NUMBER.fullmatch(value) or _is_path_or_url(value):
        return False
    if _EMAIL.fullmatch(value):
        return False
    if _ID_SHAPE.fullmatch(value):
        return True  # hex and UUIDs are secrets here: API_KEY=<uuid> is how some services issue keys
    if _NOT_SECRET_SHAPE.fullmatch(value) or _is_structured(value):
        return False
    if _WORDS.fullmatch(value):  # letters only
        return (len(value) >= 20 and _entropy(value) >= 4.0) or not _wordy(value)
    if _SNAKE_WORDS.fullmatch(value) and all(_SIMPLE_PART.fullmatch(part) for part in value.split("_")):
        return False  # value_10, get_sort_key: identifiers
    lower, upper, digit, other = _classes(value)
    if (lower or upper) and (digit or other):
        return True
    return len(value) >= 16 and _entropy(value) >= 3.5


def _high_entropy(value: str, typed: bool = False) -> bool:
    """A long random-looking token: what we accept after a secret name with no `=` or `:`."""
    if len(value) < 20 or not _TOKEN_CHARS.fullmatch(value) or _is_dummy(value) or _is_path_or_url(value):
        return False
    if _NOT_SECRET_SHAPE.fullmatch(value) or _ID_SHAPE.fullmatch(value):
        return False
    if _is_structured(value) or _is_code(value, quoted=False, typed=typed):
        return False
    lower, upper, digit, _ = _classes(value)
    return (lower or upper) and digit and _entropy(value) >= 3.5


def _token_value(value: str) -> bool:
    """A credential after a scheme such as `Bearer`: anything but a reference or a word."""
    return len(value) >= 8 and not _is_dummy(value) and not _WORDS.fullmatch(value)


def _password_value(value: str) -> bool:
    """A password in `user:password` form: anything but a reference, a stand-in or a number."""
    return not _is_dummy(value) and not value.isdigit()


# --- rules ------------------------------------------------------------------------


_OURS = re.compile(r"\[REDACTED:[\w.-]+\]")


def _cuts_placeholder(text: str, start: int, end: int) -> bool:
    """Whether [start, end) is one of our placeholders or cuts into one: an earlier pass's work.

    A span that holds whole placeholders and more (a cut-off key block running to the end
    of the text) is still redacted.
    """
    if _PLACEHOLDER_PREFIX not in text:
        return False
    for found in _OURS.finditer(text):
        low, high = found.span()
        if (start, end) == (low, high) or low < start < high or low < end < high:
            return True
    return False


_Check = Callable[[str], bool]  # a last look at a candidate secret's text


class _Rule(Protocol):
    """One redaction step; rules run in order over the text the previous one returned."""

    def apply(self, text: str, counts: Counter[str], folded: str | None = None) -> str:
        """Redact what this rule finds; `folded` is `text.lower()` when the caller has it."""
        ...


@dataclass(frozen=True, slots=True)
class _PatternRule:
    """Replace `group` of every match of `pattern` whose value passes `check`.

    A `fold` rule's pattern is written in lower case and searched in the lower-cased text:
    `re` scans for a literal prefix fast, but not under re.I (about 30x slower).
    """

    kind: str
    pattern: re.Pattern[str]
    group: int | str = 0
    check: _Check | None = None
    fold: bool = False

    def apply(self, text: str, counts: Counter[str], folded: str | None = None) -> str:
        haystack, pattern = text, self.pattern
        if self.fold:
            folded = text.lower() if folded is None else folded
            if len(folded) == len(text):
                haystack = folded
            else:  # a few characters (İ) grow when lower-cased: positions would drift
                pattern = re.compile(self.pattern.pattern, self.pattern.flags | re.I)
        pieces: list[str] = []
        done = 0
        for match in pattern.finditer(haystack):
            start, end = match.span(self.group)
            if self._redacts(text, match, start, end):
                pieces += [text[done:start], placeholder(self.kind)]
                done = end
                counts[self.kind] += 1
        return "".join(pieces) + text[done:] if pieces else text

    def _redacts(self, text: str, match: re.Match[str], start: int, end: int) -> bool:
        if start == end or _cuts_placeholder(text[match.start() : match.end()], start - match.start(), end - match.start()):
            return False
        return self.check is None or self.check(text[start:end])


def _rule(kind: str, regex: str, group: int | str = 0, check: _Check | None = None, *, fold: bool = False) -> _PatternRule:
    return _PatternRule(kind, re.compile(regex, re.S), group, check, fold)


# Speed: `re` scans fast only for a pattern that starts with a literal. A leading \b or re.I
# loses that, about 30x, so each pattern opens with its literal, checks the word boundary
# with a lookbehind placed after it, and case-insensitive ones search the lower-cased text.
def _word(prefix: str) -> str:
    """`prefix` (a fixed-width regex) where it starts a word."""
    return f"{prefix}(?<!\\w{prefix})"


_PEM_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_PRIVATE_KEY = _rule(
    "private_key",
    # A whole block first; a block cut off (capped tool output) runs to a blank line or the end.
    # Key data must follow the header: a bare header is a constant in code, not a key.
    rf"-----BEGIN {_PEM_LABEL}(?=[ \t]*(?:\r?\n|\\n)[ \t]*(?:[A-Za-z0-9+/=]{{16}}|Proc-Type:))"
    rf"(?:(?:(?!-----BEGIN ).)*?-----END {_PEM_LABEL}|.*?(?=\n[ \t]*\n|\Z))",
)

_PROVIDER_RULES = (
    _rule("jwt", _word("eyJ") + r"[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),
    _rule("anthropic_key", _word("sk-ant-") + r"[A-Za-z0-9_-]{20,}"),
    _rule("openai_key", _word("sk-") + r"(?!ant-)[A-Za-z0-9_-]{20,}", check=_random_like),
    _rule("github_token", rf"(?:{_word('gh[pousr]_')}[A-Za-z0-9]{{36,}}|{_word('github_pat_')}[A-Za-z0-9_]{{22,}})\b"),
    _rule("gitlab_token", _word("gl") + r"(?:pat|dt|rt|ptt|cbt|oas|soat)-[A-Za-z0-9_-]{20,}"),
    _rule(
        "slack_webhook", r"(?:https://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]+"
    ),  # the host alone: a token glued before the URL may take its "https"
    _rule("slack_token", rf"(?:{_word('xox')}[abposre]-[A-Za-z0-9-]{{10,}}|{_word('xapp-')}\d-[A-Za-z0-9-]{{10,}})"),
    *(_rule("stripe_key", _word(prefix) + r"[A-Za-z0-9]{16,}\b") for prefix in ("sk_live_", "sk_test_", "rk_live_", "rk_test_")),
    _rule("stripe_key", _word("whsec_") + r"[A-Za-z0-9]{24,}\b"),
    _rule("google_api_key", _word("AIza") + r"[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    _rule("aws_access_key_id", _word("A") + r"(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}\b"),
    _rule("npm_token", _word("npm_") + r"[A-Za-z0-9]{36}\b"),
    _rule("pypi_token", _word("pypi-") + r"AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
    _rule("huggingface_token", _word("hf_") + r"[A-Za-z0-9]{30,40}\b", check=_random_like),
)

# The rules below are case-insensitive: written in lower case, searched in lower-cased text.
_AUTHORIZATION = r"authorization[\"']?[ \t]*[:=][ \t]*[fbr]?[\"']?[ \t]*"
_AWS_SECRET_NAMES = (  # aws_secret_access_key, AWS_SECRET_KEY, AWS Secret Access Key; SecretAccessKey
    r"aws[_ ]?secret(?:[_ ]?access)?(?:[_ ]?key)?",
    r"secret[_ ]?access[_ ]?key",
)
_AWS_SECRET_VALUE = (
    r"(?:[ \t]*\[[^\]\n]{0,20}\])?[\"']?[ \t]*(?:[:=]>?)?[ \t]*[\"']?"
    r"(?P<secret>(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_CONTEXT_RULES = (
    *(_rule("aws_secret_key", name + _AWS_SECRET_VALUE, "secret", _random_like, fold=True) for name in _AWS_SECRET_NAMES),
    # scheme://user:PASSWORD@host: keep the user and host; the last @ before the host wins.
    _rule(
        "url_password",
        r"://(?<=[A-Za-z0-9+.-]://)[^\s:/?#@\"'<>`\[\]]*:(?P<secret>[^\s/?#\"'<>`]+)@(?=[^\s@/?#\"'<>`]+)",
        "secret",
        _password_value,
    ),
    _rule("basic_auth", _AUTHORIZATION + r"basic[ \t]+(?P<secret>[^\s\"'`,;<>\\]+)", "secret", _token_value, fold=True),
    _rule(
        "bearer_token",
        _AUTHORIZATION + r"(?:bearer|token|bot)[ \t]+(?P<secret>[^\s\"'`,;<>\\]+)",
        "secret",
        _token_value,
        fold=True,
    ),
    # a bare "Bearer <token>" outside a header: only a long random token counts
    _rule("bearer_token", _word("bearer") + r"[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{20,}=*)", "secret", _high_entropy, fold=True),
    _rule(  # curl -u user:password
        "password",
        r"-(?<!\S-)(?:u|-user)[ \t]+[\"']?[^\s:\"'@\[\]]+:(?P<secret>[^\s\"'@]+)",
        "secret",
        _password_value,
    ),
)


# --- NAME=value assignments ---------------------------------------------------------

# A keyword, the rest of its identifier, and something that could be a value after it. The
# lookahead runs in C and drops most hits (a name with no value) before any Python runs. It
# is searched in lower-cased text, which is 5x faster than re.I.
_KEYWORD = re.compile(
    r"(?:secret|token|key|pass|pwd|pw|credential|auth)[\w.-]{0,64}+"  # possessive: no backtracking into a long blob
    r"(?=(?:\\?[\"'`]\]?)?(?:[ \t]*[:=]|[ \t]+(?:is|was)[ \t]|[ \t]+[`\"']?[^\s\"'`]{8,}))"
)
_KEYWORD_ANY_CASE = re.compile(_KEYWORD.pattern, re.I)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_NAME_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_PREV_WORD = re.compile(r"([A-Za-z]+) $")
_MAX_NAME = 64

_PASSWORD_PARTS = frozenset({"password", "passwd", "pwd", "pass", "pw", "passphrase", "dbpass"})
_SECRET_PARTS = frozenset(
    {
        "secret",
        "secrets",
        "token",
        "key",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "apikey",
        "secretkey",
        "privatekey",
        "accesskey",
        "signingkey",
        "masterkey",
        "encryptionkey",
        "licensekey",
        "authkey",
        "sessionkey",
        "clientkey",
        "appkey",
        "servicekey",
        "deploykey",
    }
)
_SECRET_SUFFIXES = ("token", "secret", "password", "passwd")
# What may follow the secret word in a secret's name: SECRET_KEY_BASE, password2, token_b64.
# Anything else makes the name about the secret, not the secret: token_count, key_path.
_STILL_SECRET = frozenset(
    {
        "base",
        "value",
        "hash",
        "data",
        "b64",
        "base64",
        "hex",
        "pem",
        "raw",
        "str",
        "string",
        "bytes",
        "material",
        "plain",
        "plaintext",
        "enc",
        "encrypted",
        "live",
        "prod",
        "production",
        "dev",
        "development",
        "test",
        "staging",
        "new",
        "old",
        "current",
        "previous",
        "prev",
        "secondary",
        "backup",
        "override",
        "confirm",
        "confirmation",
        "again",
        "repeat",
        "retype",
        "verify",
        "v",
    }
)
# Keys that index data, not unlock it: primary_key, sort_key, cache key.
_DATA_KEY_PREFIXES = frozenset(
    {
        "primary",
        "foreign",
        "sort",
        "sorting",
        "partition",
        "hash",
        "range",
        "cache",
        "lookup",
        "unique",
        "composite",
        "natural",
        "dedup",
        "dedupe",
        "group",
        "join",
        "map",
        "dict",
        "object",
        "s3",
        "redis",
        "row",
        "idempotency",
        "list",
        "item",
        "public",
        "pub",
        "node",
        "entity",
        "shard",
        "routing",
        "order",
        "table",
        "index",
        "react",
        "hot",
        "short",
        "translation",
        "i18n",
        "locale",
        "message",
        "label",
        "state",
        "storage",
        "config",
        "setting",
        "settings",
        "column",
        "field",
        "attr",
        "property",
        "prop",
        "json",
        "yaml",
        "query",
        "search",
        "kv",
        "registry",
        "dictionary",
        "hotkey",
        "mask",
        "source",
        "target",
        "dest",
        "destination",
        "parent",
        "child",
        "sub",
        "next",
        "prev",
        "previous",
        "metadata",
    }
)
# "api key: ..." names a secret even though the name itself is just `key`.
_SECRET_KEY_PREFIXES = frozenset(
    {
        "api",
        "secret",
        "private",
        "access",
        "signing",
        "master",
        "encryption",
        "license",
        "auth",
        "client",
        "app",
        "deploy",
        "service",
        "my",
        "your",
        "our",
        "openai",
        "anthropic",
        "stripe",
    }
)
_WEAK_KEY = "weak_key"  # a lone `key`: only a high-entropy value next to it is taken
_DATA_TOKEN_PREFIXES = frozenset(
    {
        "next",
        "page",
        "pagination",
        "continuation",
        "cancel",
        "cancellation",
        "sync",
        "stop",
        "eos",
        "bos",
        "pad",
        "unk",
        "sep",
        "cls",
        "mask",
        "special",
        "start",
        "end",
        "max",
        "num",
    }
)

_VALUE = (
    r"(?:\\\"(?P<eq>[^\"\\\n]*)\\\""
    r"|\"(?P<dq>(?:[^\"\\\n]|\\.)*)\""
    r"|'(?P<sq>[^'\n]*)'"
    r"|`(?P<bq>[^`\n]*)`"
    r"|(?P<bare>[^\s\"'`,;&\\]+))"
)
_STRICT_TAIL = re.compile(
    r"(?:\\?[\"'`]\]?)?"  # the name's closing quote, or os.environ["NAME"]
    # a type annotation, `password: str | None = "..."`: short, with spaces around its `=` or
    # a quoted default, so neither base64 padding (`client-key-data: LS0t...==`) nor a
    # password with `=` in it (`password: fTaR3kC=9Xt`) is taken for one
    r"[ \t]*(?::[ \t]*[A-Za-z_][\w.\[\]]{0,40}(?:(?:[ \t]*\|[ \t]*|,[ \t]*)[\w.\[\]]{1,40}){0,4}"
    r"(?=[ \t]+=[ \t]+[^\s=]|[ \t]*=[ \t]*[bBrRuUfF]{0,2}[\"']))?[ \t]*"
    r"(?P<sep>==|=>|:=|=|:)[ \t]*(?:[bBrRuUfF]{1,2}(?=[\"']))?" + _VALUE
)
_TYPE_FOLLOWS = re.compile(r"[ \t]*[|,)\]=]")
_LOOSE_TAIL = re.compile(r"(?:\\?[\"'`])?[ \t]+(?:(?P<verb>(?i:is|was))[ \t]+)?[`\"']?(?P<bare>[^\s\"'`,;&<>()\[\]{}\\]+)")


def _secret_part(part: str, before: str) -> str | None:
    """The kind a name part stands for (`password`, `secret`), or None."""
    if part in _PASSWORD_PARTS or part.endswith(("password", "passwd")):
        return "password"
    if (part == "key" and before in _DATA_KEY_PREFIXES) or (part == "token" and before in _DATA_TOKEN_PREFIXES):
        return None
    return "secret" if part in _SECRET_PARTS or part.endswith(_SECRET_SUFFIXES) else None


def _name_kind(name: str, prev_word: str) -> str | None:
    """`password` or `secret` when the name says it holds one, `weak_key` for a lone `key`, else None.

    Only the last dotted component counts (`key_node.tag` is a tag), and the secret word must
    end the name but for suffixes such as `_base` or `2`.
    """
    parts = [part.lower() for part in _NAME_PART.findall(name.rsplit(".", 1)[-1])]
    if parts == ["key"] and prev_word not in _SECRET_KEY_PREFIXES:
        # sorted(key=...), press(key: string), "cache with key: ...": mostly not secrets
        return None if prev_word in _DATA_KEY_PREFIXES else _WEAK_KEY
    if any(part in ("public", "pub", "publishable") for part in parts) or "key-value" in "-".join(parts):
        return None  # public and publishable keys are meant to be seen; key_value is a data structure
    kinds = [_secret_part(part, parts[i - 1] if i else prev_word) for i, part in enumerate(parts)]
    found = [i for i, kind in enumerate(kinds) if kind]
    if not found or not all(part in _STILL_SECRET or part.isdigit() for part in parts[found[-1] + 1 :]):
        return None
    return "password" if "password" in kinds else "secret"


def _name_span(text: str, hit: re.Match[str]) -> tuple[int, int] | None:
    """The identifier around a keyword hit, or None when it is too long to be a name."""
    start, end = hit.span()
    floor = max(0, start - _MAX_NAME)
    while start > floor and text[start - 1] in _NAME_CHARS:
        start -= 1
    if (start == floor and floor and text[floor - 1] in _NAME_CHARS) or end - start > _MAX_NAME:
        return None
    return start, end


def _value_span(match: re.Match[str]) -> tuple[int, int, str]:
    """The span and text of whichever value alternative matched, minus closing brackets."""
    for group in ("eq", "dq", "sq", "bq", "bare"):
        if group in match.re.groupindex and match.group(group) is not None:
            start, end = match.span(group)
            if group == "bare":  # shed closing code and punctuation, but never "!": passwords end in it
                trailing = ")]}>.,:;?" if match.re is _LOOSE_TAIL else ")]}>.,:;"
                while end > start and match.string[end - 1] in trailing:
                    end -= 1
            return start, end, match.string[start:end]
    raise AssertionError("the value pattern always sets one group")


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A value that follows a name: where it is, and how firmly the text ties it to the name."""

    start: int
    end: int
    value: str
    said: bool  # `=`, `:`, `--flag value` or "is": any secret-looking value counts; else only a random one
    quoted: bool  # a literal for sure; a bare value may be code
    resume: int  # where the keyword scan goes on: past a bare `=` value, whose hits would each rescan it
    typed: bool = False  # `name: Value |`, `name: Value,`: where a type annotation sits


def _candidate(text: str, name: str, end: int) -> _Candidate | None:
    """The value after `name` (which ends at `end`), if one follows it."""
    strict = _STRICT_TAIL.match(text, end)
    if strict:
        start, stop, value = _value_span(strict)
        quoted = strict.group("bare") is None
        typed = not quoted and strict.group("sep") == ":" and bool(_TYPE_FOLLOWS.match(text, stop))
        return _Candidate(start, stop, value, said=True, quoted=quoted, resume=end if quoted else strict.end(), typed=typed)
    loose = _LOOSE_TAIL.match(text, end)
    if not loose:
        return None
    # `--password s3cret!` and "the password is s3cret!" say what follows; a bare gap does not.
    said = name.startswith("-") or bool(loose.group("verb"))
    return _Candidate(*_value_span(loose), said=said, quoted=False, resume=end)


def _is_secret(candidate: _Candidate, kind: str) -> bool:
    """Whether the candidate value is a secret, given how firmly it is tied to its name."""
    if candidate.said and kind != _WEAK_KEY:
        return _looks_secret(candidate.value, 6 if kind == "password" else 8, candidate.quoted, candidate.typed)
    return _high_entropy(candidate.value, candidate.typed)


@dataclass(frozen=True, slots=True)
class _AssignmentRule:
    """`NAME=value` and its cousins, where NAME says secret, token, key or password."""

    def apply(self, text: str, counts: Counter[str], folded: str | None = None) -> str:
        pieces: list[str] = []
        done = pos = 0
        folded = folded if folded is not None else text.lower()
        if len(folded) == len(text):
            search = functools.partial(_KEYWORD.search, folded)
        else:  # a few characters (İ) grow when lower-cased: positions would drift
            search = functools.partial(_KEYWORD_ANY_CASE.search, text)
        while hit := search(pos):
            span = _name_span(text, hit)
            pos = hit.end()
            if span is None or text.startswith(_PLACEHOLDER_PREFIX, span[0] - len(_PLACEHOLDER_PREFIX)):
                continue  # not a name, or the kind inside one of our placeholders
            name = text[span[0] : span[1]]
            candidate = _candidate(text, name, span[1])  # cheap: most keyword hits have no value after them
            if candidate is None:
                continue
            pos = max(pos, candidate.resume)  # key=key=key=... would otherwise be quadratic
            prev = _PREV_WORD.search(text, max(0, span[0] - 24), span[0])
            kind = _name_kind(name, prev.group(1).lower() if prev else "")
            if kind and _is_secret(candidate, kind):
                kind = "secret" if kind == _WEAK_KEY else kind
                pieces += [text[done : candidate.start], placeholder(kind)]
                done = pos = candidate.end
                counts[kind] += 1
        return "".join(pieces) + text[done:] if pieces else text


_BUILTIN_RULES: tuple[_Rule, ...] = (_PRIVATE_KEY, *_PROVIDER_RULES, *_CONTEXT_RULES, _AssignmentRule())
KINDS: tuple[str, ...] = tuple(
    dict.fromkeys([rule.kind for rule in _BUILTIN_RULES if isinstance(rule, _PatternRule)] + ["password", "secret"])
)


def _user_rule(name: str, regex: str) -> _PatternRule:
    """Compile one user pattern; its `secret` group, else its first group, else the match is replaced."""
    if not isinstance(name, str) or not _NAME_OK.fullmatch(name):
        raise ConfigError(f"Redaction pattern name {name!r} must be 1-40 letters, digits, '_', '.' or '-'.")
    try:
        pattern = re.compile(regex)
    except (re.error, TypeError) as error:
        raise ConfigError(f"Redaction pattern {name!r} is not a valid regular expression: {error}") from error
    if pattern.match(""):
        raise ConfigError(f"Redaction pattern {name!r} matches the empty string; it would redact everywhere.")
    group: int | str = "secret" if "secret" in pattern.groupindex else (1 if pattern.groups else 0)
    return _PatternRule(name, pattern, group)  # as written: user patterns keep their own flags


class Redactor:
    """Replaces secrets in text with `[REDACTED:<kind>]` placeholders.

    Args:
        extra_patterns: more secrets to find, as name -> regular expression. The name is
            the placeholder's kind. A pattern's `secret` group (else its first group, else
            the whole match) is what gets replaced. Applied before the built-in rules.

    Raises:
        ConfigError: a pattern does not compile, matches the empty string, or has a bad name.
    """

    def __init__(self, extra_patterns: Mapping[str, str] | None = None) -> None:
        user_rules = [_user_rule(name, regex) for name, regex in (extra_patterns or {}).items()]
        self._rules: tuple[_Rule, ...] = (*user_rules, *_BUILTIN_RULES)

    def redact(self, text: str) -> Redaction:
        """Redact every secret found in `text`.

        Args:
            text: any text: a prompt, a tool call, a tool's output.

        Returns:
            The redacted text and the number of secrets replaced per kind. Redacting the
            result again changes nothing.
        """
        counts: Counter[str] = Counter()
        original, folded = text, text.lower()  # shared by the case-insensitive rules until one changes the text
        for rule in self._rules:
            text = rule.apply(text, counts, folded if text is original else None)
        return Redaction(text, dict(counts))

    def redact_text(self, text: str) -> str:
        """Redact `text` and return only the redacted text."""
        return self.redact(text).text

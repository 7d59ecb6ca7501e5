import pytest

from doops import masking


def test_dsn_password_masked() -> None:
    assert masking.mask("postgres://doadmin:s3cr3t@db.example:25060/defaultdb") == \
        "postgres://doadmin:***@db.example:25060/defaultdb"


def test_registered_secret_masked_anywhere() -> None:
    masking.register("hunter2-abcdef")
    assert "hunter2" not in masking.mask("the password is hunter2-abcdef, ok")


def test_bearer_and_do_token_shapes() -> None:
    text = "Authorization: Bearer abc.def and dop_v1_" + "ab" * 32
    masked = masking.mask(text)
    assert "abc.def" not in masked and "ab" * 32 not in masked


def test_uri_passwords_masked_with_any_password_shape() -> None:
    text = ("s3://key:se/cr:et@bucket and redis://default:pw@cache:6379 "
            "x://u:p://nested:y@h mongodb+srv://app:a%40b@c/")
    assert masking.mask(text) == ("s3://key:***@bucket and redis://default:***@cache:6379 "
                                  "x://u:***@h mongodb+srv://app:***@c/")


def test_uri_without_password_left_alone() -> None:
    for text in ("https://api.digitalocean.com/v2/account", "x://u:@h", "x://u:p q@h", "x://u:p\n@h",
                 "postgres://doadmin@db:25060", "://a:" * 50):
        assert masking.mask(text) == text


def test_secret_after_a_long_run_is_still_masked() -> None:
    """The shapes that made the old URI pattern retry from every position still mask what follows them."""
    for run in ("a" * 50_000, "://a:" * 10_000, "bearer " + " " * 50_000):
        masked = masking.mask(run + " postgres://u:s3cr3t@h Authorization: Bearer tok.en")
        assert "s3cr3t" not in masked and "tok.en" not in masked
        assert masked.startswith(run[:100])


def _fixed_prefix(items: object) -> int:
    """Characters a pattern must match one by one before its first unbounded repeat (min over branches)."""
    from re import _constants as c  # type: ignore[attr-defined]

    count = 0
    for op, arg in items:  # type: ignore[attr-defined]
        if op in (c.LITERAL, c.IN, c.ANY):
            count += 1
        elif op is c.AT:
            continue
        elif op is c.SUBPATTERN:
            inner = _fixed_prefix(arg[-1])
            count += inner
            if inner < _width(arg[-1]):
                return count
        elif op is c.BRANCH:
            return count + min(_fixed_prefix(b) for b in arg[1])
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and arg[1] <= 1:
            continue  # optional single item: bounded
        else:
            return count
    return count


def _width(items: object) -> int:
    from re import _parser as p  # type: ignore[attr-defined]

    lo, hi = p.SubPattern(p.State(), list(items)).getwidth()  # type: ignore[call-overload]
    return int(hi) if hi == lo else 10**9


def test_every_pattern_starts_with_a_fixed_keyword() -> None:
    """Why: a pattern whose first item is an unbounded repeat (the old ``[a-zA-Z][a-zA-Z0-9+.-]*://``) is
    retried at every position of a long run and scans it again each time: quadratic. With three or more fixed
    characters first, attempts start only where the keyword is; and each pattern's keywords gate it."""
    from re import _parser as p  # type: ignore[attr-defined]

    for keywords, pattern, _ in masking._PATTERNS:
        assert _fixed_prefix(p.parse(pattern.pattern).data) >= 3, pattern.pattern
        for sample in ("Authorization: Bearer x", "BEARER y", "dop_v1_" + "ab" * 16, "PASSWORD=z",
                       '"secret_access_key": "k"', "access_token=t", '"Password" : v'):
            if pattern.search(sample):
                assert any(k in sample.casefold() for k in keywords), (pattern.pattern, sample)


def test_uri_scan_reads_each_character_a_bounded_number_of_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linear without a clock: count the characters the URI scanner's searches cover on adversarial input."""
    import re

    scanned = [0]

    class Counting:
        def __init__(self, pattern: re.Pattern[str]) -> None:
            self.pattern = pattern

        def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
            m = self.pattern.search(text, pos)
            scanned[0] += (m.end() if m else len(text)) - pos
            return m

    monkeypatch.setattr(masking, "_URI_USER", Counting(masking._URI_USER))
    monkeypatch.setattr(masking, "_URI_PASSWORD_END", Counting(masking._URI_PASSWORD_END))
    for text in ("://a:" * 20_000, "x://u:" + "p" * 100_000, ("x://u:" + "p" * 50 + " ") * 2_000,
                 "x://u:p@h" * 10_000):
        scanned[0] = 0
        masking._mask_uri_passwords(text)
        assert scanned[0] <= 2 * len(text), (text[:20], scanned[0], len(text))

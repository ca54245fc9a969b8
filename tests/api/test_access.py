"""API identities: the [api.tokens] tables of the credentials file, the token lookup and
the token bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodstate.api.access import RateLimit, Tokens
from prodstate.security.credentials import ApiToken, CredentialsError, load_credentials

TOKEN = "t0k3n-of-twenty-chars"


def credentials(tmp_path: Path, text: str):
    path = tmp_path / "credentials.toml"
    path.write_text(text)
    path.chmod(0o600)
    return load_credentials(str(path), environ={})


def test_tokens_and_rights_come_from_the_credentials_file(tmp_path):
    found = credentials(
        tmp_path,
        f'[api.tokens.shop]\ntoken = "{TOKEN}"\nrights = ["read", "report"]\n'
        f'[api.tokens.ops]\ntoken = "{TOKEN}-ops"\nrights = ["write"]\n',
    )
    assert found.api_tokens["shop"].rights == {"read", "report"}
    assert found.api_tokens["ops"].rights == {"write"}
    assert TOKEN in found.secrets() and TOKEN not in repr(found)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('token = "short"\nrights = ["read"]', "at least 16"),
        (f'token = "{TOKEN}"\nrights = ["admin"]', "rights"),
        (f'token = "{TOKEN}"\nrights = []', "rights"),
        (f'token = "{TOKEN}"\nrights = [{{a = 1}}]', "rights"),
        (f'token = "{TOKEN}"\nrights = "read"', "rights"),
        (f'token = "{TOKEN} x"\nrights = ["read"]', "no space"),
        (f'token = "{TOKEN}"\nrights = ["read"]\nuser = "x"', "token and rights"),
    ],
)
def test_bad_token_tables_are_refused_naming_them(tmp_path, table, says):
    with pytest.raises(CredentialsError, match=says) as refused:
        credentials(tmp_path, f"[api.tokens.shop]\n{table}\n")
    assert "api.tokens.shop" in str(refused.value)
    assert TOKEN not in str(refused.value)  # a message never shows a token


def test_two_identities_may_not_share_a_token(tmp_path):
    text = "".join(f'[api.tokens.{n}]\ntoken = "{TOKEN}"\nrights = ["read"]\n' for n in "ab")
    with pytest.raises(CredentialsError, match="its own"):
        credentials(tmp_path, text)


def test_the_file_stays_private(tmp_path):
    path = tmp_path / "credentials.toml"
    path.write_text(f'[api.tokens.shop]\ntoken = "{TOKEN}"\nrights = ["read"]\n')
    path.chmod(0o640)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_credentials(str(path), environ={})


def test_a_token_names_its_identity_and_nothing_else_does():
    shop = ApiToken("shop", TOKEN, frozenset({"read"}))
    tokens = Tokens({"shop": shop, "ops": ApiToken("ops", TOKEN + "x", frozenset())})
    assert tokens.identify(TOKEN) is shop
    assert tokens.identify(TOKEN + "x").name == "ops"
    for wrong in ("", TOKEN[:-1], TOKEN.upper(), TOKEN + "xx", "é" * 20):
        assert tokens.identify(wrong) is None


def test_the_bucket_allows_a_burst_then_the_rate():
    now = [100.0]
    limit = RateLimit(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limit.allow("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.allow("a") == pytest.approx(0.5)
    assert limit.allow("b") == 0.0  # each identity its own bucket
    now[0] += 0.5
    assert limit.allow("a") == 0.0
    assert limit.allow("a") > 0
    now[0] += 100  # refills up to the burst, no further
    assert [limit.allow("a") for _ in range(4)][-1] > 0


def test_the_buckets_tracked_are_bounded():
    now = [0.0]
    limit = RateLimit(rate=1.0, burst=1, clock=lambda: now[0], max_keys=2)
    assert limit.allow("a") == 0.0 and limit.allow("b") == 0.0
    assert limit.allow("c") == 1.0  # both still empty: a third caller waits
    now[0] += 1.0  # a and b refilled: forgotten, c tracked
    assert limit.allow("c") == 0.0
    assert limit.allow("a") == 0.0 and limit.allow("c") > 0

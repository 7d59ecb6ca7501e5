from doops import secrets


def test_dsn_password_masked() -> None:
    assert secrets.mask("postgres://doadmin:s3cr3t@db.example:25060/defaultdb") == \
        "postgres://doadmin:***@db.example:25060/defaultdb"


def test_registered_secret_masked_anywhere() -> None:
    secrets.register("hunter2-abcdef")
    assert "hunter2" not in secrets.mask("the password is hunter2-abcdef, ok")


def test_bearer_and_do_token_shapes() -> None:
    text = "Authorization: Bearer abc.def and dop_v1_" + "ab" * 32
    masked = secrets.mask(text)
    assert "abc.def" not in masked and "ab" * 32 not in masked

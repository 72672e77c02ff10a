from __future__ import annotations

import os
import stat
import string
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.core.errors import ConfigError, KilnError
from kiln.core.files import write_private_file
from kiln.security.passwords import check_policy
from kiln.security.secrets import (
    SECRET_FILE_NAME,
    SecretFileError,
    derive_key,
    generate_password,
    load_or_create_secret,
    load_secret,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # The file must be 0600 because Kiln asks for it, not because the test runner's umask is strict.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@posix_only
@pytest.mark.usefixtures("permissive_umask")
def test_secret_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path)
    path = tmp_path / SECRET_FILE_NAME
    assert len(first) == 32
    assert path.read_bytes() == first
    assert _mode(path) == 0o600
    assert load_or_create_secret(tmp_path) == first
    assert load_secret(tmp_path) == first
    # No temporary file is left beside it.
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE_NAME]


def test_missing_data_dir_is_created(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b"
    secret = load_or_create_secret(data_dir)
    assert (data_dir / SECRET_FILE_NAME).read_bytes() == secret


def test_two_installs_get_different_secrets(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path / "one") != load_or_create_secret(tmp_path / "two")


def test_concurrent_first_starts_agree_on_one_secret(tmp_path: Path) -> None:
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(load_or_create_secret(tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert set(results) == {(tmp_path / SECRET_FILE_NAME).read_bytes()}


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_secret_readable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    load_or_create_secret(tmp_path)
    path = tmp_path / SECRET_FILE_NAME
    path.chmod(mode)
    with pytest.raises(SecretFileError, match="chmod 600") as info:
        load_or_create_secret(tmp_path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, KilnError)
    assert isinstance(info.value, ConfigError)
    with pytest.raises(SecretFileError):
        load_secret(tmp_path)
    path.chmod(0o600)
    assert len(load_secret(tmp_path)) == 32


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_secret_of_wrong_size_is_a_clear_error(tmp_path: Path, size: int) -> None:
    path = tmp_path / SECRET_FILE_NAME
    path.write_bytes(b"x" * size)
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match="expected 32"):
        load_or_create_secret(tmp_path)
    assert path.read_bytes() == b"x" * size  # never overwritten


@posix_only
def test_secret_behind_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.write_bytes(b"k" * 32)
    real.chmod(0o600)
    (tmp_path / SECRET_FILE_NAME).symlink_to(real)
    with pytest.raises(SecretFileError, match="symbolic link"):
        load_secret(tmp_path)


def test_load_secret_never_creates(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no install secret") as info:
        load_secret(tmp_path)
    assert str(tmp_path / SECRET_FILE_NAME) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_derived_keys_differ_per_purpose_and_per_install() -> None:
    secret_a, secret_b = bytes(range(32)), bytes(range(1, 33))
    keys = {p: derive_key(secret_a, p) for p in ("jwt", "audit", "totp")}
    assert len(set(keys.values())) == 3
    assert all(len(k) == 32 for k in keys.values())
    assert secret_a not in keys.values()
    assert derive_key(secret_a, "jwt") == keys["jwt"]  # deterministic across restarts
    assert derive_key(secret_b, "jwt") != keys["jwt"]


def test_derive_key_rejects_short_secret_and_empty_purpose() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        derive_key(b"short", "jwt")
    with pytest.raises(ValueError, match="purpose"):
        derive_key(bytes(32), "")


@posix_only
@pytest.mark.usefixtures("permissive_umask")
def test_private_file_is_owner_only_even_when_replacing_a_readable_one(tmp_path: Path) -> None:
    path = tmp_path / "initial-admin.txt"
    path.write_text("old\n")
    path.chmod(0o644)
    write_private_file(path, "user: admin\npassword: s3cr3t\n")
    assert path.read_text() == "user: admin\npassword: s3cr3t\n"
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["initial-admin.txt"]


def test_generated_passwords_are_long_random_and_pass_the_policy() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    allowed = set(string.ascii_letters + string.digits)
    for pw in passwords:
        assert len(pw) == 20
        assert set(pw) <= allowed
        check_policy(pw, "admin")
    assert len(generate_password(32)) == 32
    with pytest.raises(ValueError, match="at least 12"):
        generate_password(8)


def test_a_generated_password_never_contains_the_user_name() -> None:
    # A one-letter name is in almost every random password of 20 characters (found as a flaky
    # `kiln admin users add a3 --generate`, refused by the policy about once in a hundred runs).
    for _ in range(200):
        pw = generate_password(username="A")
        assert "a" not in pw.casefold()
        check_policy(pw, "a")

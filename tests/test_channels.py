"""Channel URLs -> the names users write; tokens and credentials never survive."""

from __future__ import annotations

import pytest

from jupyter_repro.environments.channels import (
    channel_of_package_url,
    channel_url,
    record_channel_name,
    redact_url,
    short_channel_name,
)


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("https://conda.anaconda.org/conda-forge", "conda-forge"),
        ("https://conda.anaconda.org/conda-forge/", "conda-forge"),
        ("https://conda.anaconda.org/conda-forge/linux-64", "conda-forge"),
        ("https://conda.anaconda.org/conda-forge/noarch/", "conda-forge"),
        ("http://conda.anaconda.org/bioconda/osx-arm64", "bioconda"),
        ("https://conda.anaconda.org/conda-forge/label/rc/linux-64", "conda-forge/label/rc"),
        ("https://conda.anaconda.org/t/tk-123/private-org/linux-64", "private-org"),
        ("https://repo.anaconda.com/pkgs/main/linux-64", "defaults"),
        ("https://repo.anaconda.com/pkgs/main", "defaults"),
        ("https://repo.anaconda.com/pkgs/r/noarch", "defaults"),
        ("https://repo.anaconda.com/pkgs/msys2/win-64", "defaults"),
        ("pkgs/main", "defaults"),
        ("conda-forge", "conda-forge"),
        ("bioconda", "bioconda"),
        ("https://prefix.dev/conda-forge/", "https://prefix.dev/conda-forge"),
        ("https://repo.anaconda.com/pkgs/free/linux-64", "https://repo.anaconda.com/pkgs/free"),
        ("file:///srv/channel/", "file:///srv/channel"),
        ("file:///srv/channel/linux-64", "file:///srv/channel"),
        ("https://my.repo/t/tk-123/private/linux-64", "https://my.repo/private"),
        ("https://user:secret@my.repo/private/", "https://my.repo/private"),
    ],
)
def test_short_channel_names(channel, expected):
    assert short_channel_name(channel) == expected


def test_the_records_own_subdir_is_stripped_even_if_unknown():
    assert short_channel_name("https://x.org/ch/weird-sub", subdir="weird-sub") == (
        "https://x.org/ch"
    )
    assert short_channel_name("https://x.org/ch/weird-sub") == "https://x.org/ch/weird-sub"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://conda.anaconda.org/t/tk-123/conda-forge/a.conda",
            "https://conda.anaconda.org/conda-forge/a.conda",
        ),
        ("https://host/t/tk-123", "https://host"),
        ("https://host/t/tk-1/t/tk-2/x", "https://host/x"),
        ("https://user:secret@host/x", "https://host/x"),
        ("https://ghp_token@github.com/o/r.git", "https://github.com/o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("https://host/path@v1", "https://host/path@v1"),
        ("https://host/x", "https://host/x"),
        ("https://u:p@[bad/x", "https://[bad/x"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redacted_urls_hold_no_secret():
    for url in ("https://u:tk-123@h/t/tk-123/c", "https://tk-123@h/c", "https://h/t/tk-123/c"):
        assert "tk-123" not in redact_url(url)
        assert "tk-123" not in short_channel_name(url)
        assert "tk-123" not in channel_url(url)


def test_channel_from_a_package_url():
    assert channel_of_package_url("https://conda.anaconda.org/conda-forge/noarch/a-1-0.conda") == (
        "https://conda.anaconda.org/conda-forge"
    )
    assert channel_of_package_url("file:///srv/ch/linux-64/a-1-0.tar.bz2") == "file:///srv/ch"
    assert channel_of_package_url("https://host/a-1-0.conda") is None
    assert channel_of_package_url("https://host/ch/linux-64/readme.txt") is None


def test_record_channel_name_prefers_channel_then_url():
    url = "https://conda.anaconda.org/t/tk-1/bioconda/noarch/a-1-0.conda"
    assert record_channel_name("https://conda.anaconda.org/conda-forge/", url) == "conda-forge"
    assert record_channel_name(None, url) == "bioconda"
    assert record_channel_name("<unknown>", url) == "bioconda"
    assert record_channel_name("", None) is None

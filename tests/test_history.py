"""conda-meta/history -> the specs the user still asks for (`conda env export --from-history`)."""

from __future__ import annotations

import json

import pytest

from jupyter_repro.environments.history import (
    parse_history,
    read_history,
    requested_specs,
    spec_name,
    specs_from_cmd,
)
from jupyter_repro.environments.prefix import Prefix
from tests.rig.installation import requested_specs as rig_requested_specs


def requested(text: str) -> dict[str, str] | None:
    return requested_specs(parse_history(text))


# -- written by the rig the way conda writes it -----------------------------------------------


def test_install_update_remove_gives_what_conda_reports(conda_installation):
    inst = conda_installation
    prefix = inst.create_env("work", ["python", "pkgc", "pkgb<2"])
    inst.add_packages(prefix, ["pkgb>=2"])  # replaces the earlier pkgb spec
    inst.add_packages(prefix, ["rig-activate"])
    removed = inst.remove_packages(prefix, ["rig-activate"])
    assert removed == ["rig-activate"]

    specs = Prefix(prefix).requested_specs()

    assert specs == {"python": "python", "pkgc": "pkgc", "pkgb": "pkgb[version='>=2']"}
    assert list(specs) == ["python", "pkgc", "pkgb"]  # order of first request
    assert specs == rig_requested_specs(prefix)  # the rig's own replay agrees
    installed = inst.installed(prefix)
    assert installed["pkgb"] == "2.0"
    assert "rig-activate" not in installed


def test_removing_a_dependency_keeps_the_dependents_spec_in_history(conda_installation):
    # conda removes pkgc with pkga but only records `remove specs: ['pkga']`: the history
    # still names pkgc, and it is the exporter's job to drop what is not installed.
    prefix = conda_installation.create_env("cascade", ["python", "pkgc"])
    assert sorted(conda_installation.remove_packages(prefix, ["pkga"])) == ["pkga", "pkgc"]

    specs = Prefix(prefix).requested_specs()

    assert specs == {"python": "python", "pkgc": "pkgc"}
    assert "pkgc" not in conda_installation.installed(prefix)


def test_records_requested_specs_are_used_when_history_is_empty(conda_installation):
    prefix = conda_installation.create_env("rattler-made", ["pkgc", "pkgb<2"])
    (prefix / "conda-meta" / "history").write_text("")  # as rattler and pixi leave it

    specs = Prefix(prefix).requested_specs()

    # rattler 0.28 writes `requested_specs` lists; the dependency pkga has none.
    assert specs == {"pkgb": "pkgb <2", "pkgc": "pkgc"}


def test_records_with_conda_style_requested_spec(tmp_path):
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    for name, requested_spec in (("numpy", "numpy>=1.26"), ("libzlib", "")):
        (meta / f"{name}-1.0-0.json").write_text(
            json.dumps(
                {"name": name, "version": "1.0", "build": "0", "requested_spec": requested_spec}
            )
        )

    assert Prefix(tmp_path).requested_specs() == {"numpy": "numpy>=1.26"}


def test_missing_history_and_no_requests_give_nothing(tmp_path):
    (tmp_path / "conda-meta").mkdir()
    assert read_history(tmp_path / "conda-meta" / "history") == []
    assert requested_specs([]) is None
    assert Prefix(tmp_path).requested_specs() == {}


# -- hand-written histories of older condas ---------------------------------------------------

OLD_CONDA = """\
==> 2017-03-01 10:00:00 <==
# cmd: /opt/conda/bin/conda create -n old python=3.6 numpy -c conda-forge --yes
+conda-forge::python-3.6.0-0
+conda-forge::numpy-1.12.0-py36_0
==> 2017-04-01 10:00:00 <==
# cmd: conda install -n old --file requirements.txt scipy "pandas>=0.19"
+conda-forge::scipy-0.19.0-np112py36_0
==> 2017-05-01 10:00:00 <==
# cmd: conda remove -n old numpy
-conda-forge::numpy-1.12.0-py36_0
==> 2017-06-01 10:00:00 <==
# cmd: conda update --all
==> 2017-07-01 10:00:00 <==
# cmd: conda env update -n old -f environment.yml
"""


def test_old_histories_take_specs_from_the_cmd_line():
    assert requested(OLD_CONDA) == {
        "python": "python=3.6",
        "scipy": "scipy",
        "pandas": "pandas>=0.19",
    }


def test_comma_separated_install_specs_of_conda_4_3():
    text = (
        "==> 2017-01-01 00:00:00 <==\n"
        "# cmd: conda create -n x python=3.5 numpy\n"
        "# install specs: python 3.5*, numpy >=1.11,<2\n"
        "==> 2017-01-02 00:00:00 <==\n"
        "# remove specs: python\n"
    )
    assert requested(text) == {"numpy": "numpy >=1.11,<2"}


def test_later_updates_replace_earlier_ones_and_removed_specs_can_return():
    text = (
        "==> 2024-01-01 00:00:00 <==\n"
        "# update specs: ['numpy', 'scipy', 'conda-forge::pandas']\n"
        "==> 2024-01-02 00:00:00 <==\n"
        "# update specs: [\"numpy[version='>=1.26']\"]\n"
        "==> 2024-01-03 00:00:00 <==\n"
        "# remove specs: ['scipy']\n"
        "==> 2024-01-04 00:00:00 <==\n"
        "# update specs: ['scipy=1.11']\n"
        "# neutered specs: ['pandas[version=\\'>=2\\']']\n"
    )
    specs = requested(text)

    assert specs == {
        "numpy": "numpy[version='>=1.26']",
        "pandas": "pandas[version='>=2']",
        "scipy": "scipy=1.11",
    }
    assert list(specs or {}) == ["numpy", "pandas", "scipy"]


def test_spec_lines_win_over_the_cmd_line():
    text = (
        "==> 2024-01-01 00:00:00 <==\n# cmd: conda install numpy scipy\n# update specs: ['numpy']\n"
    )
    assert requested(text) == {"numpy": "numpy"}


def test_garbage_is_skipped():
    text = (
        "stray line before any header\n"
        "+conda-forge::zlib-1.0-0\n"
        "==> 2024-01-01 00:00:00 <==\n"
        "# update specs: ['unterminated\n"
        "# update specs: {'a': 1}\n"
        "# update specs: [1, 2, 'ok']\n"
        "\x00\x01 binary junk \ufffd\n"
        "# something else entirely\n"
        "==> not a date <==\n"
        "# update specs: [" + "[" * 500 + "]" * 500 + "]\n"
        "# update specs: ['*[version=1]', 'later']\n"
    )
    entries = parse_history(text)

    assert entries[0].date is None
    assert entries[0].added == ["conda-forge::zlib-1.0-0"]
    assert requested(text) == {"ok": "ok", "later": "later"}


def test_histories_of_only_package_lines_request_nothing():
    text = "==> 2024-01-01 00:00:00 <==\n+conda-forge::zlib-1.0-0\n"
    assert requested(text) is None
    assert requested("") is None


def test_unreadable_bytes_in_the_file(tmp_path):
    path = tmp_path / "history"
    path.write_bytes(b"==> 2024-01-01 00:00:00 <==\n# update specs: ['caf\xe9', 'numpy']\n")

    (entry,) = read_history(path)

    assert entry.update_specs == ["caf\ufffd", "numpy"]


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (
            "conda install -y -n env -c conda-forge numpy=1.2 'scipy>=1'",
            (["numpy=1.2", "scipy>=1"], []),
        ),
        ("conda create --name=env --channel=cf python", (["python"], [])),
        ("conda install -f numpy", (["numpy"], [])),  # -f was --force then
        ("conda install -p /x --prefix /y --file f.txt --revision 3", ([], [])),
        ("conda uninstall -n env numpy", ([], ["numpy"])),
        ("mamba update -n env pandas", (["pandas"], [])),
        ("conda env create -f environment.yml", ([], [])),
        ("conda install 'unbalanced", (["'unbalanced"], [])),
        ("conda", ([], [])),
    ],
)
def test_specs_from_cmd(cmd, expected):
    assert specs_from_cmd(cmd) == expected


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("numpy", "numpy"),
        ("NumPy>=1.2", "numpy"),
        ("conda-forge::numpy", "numpy"),
        ("conda-forge/linux-64::numpy==1.2=py_0", "numpy"),
        ("scipy[version='>=1']", "scipy"),
        ("python 3.11.* *_cpython", "python"),
        ("r-base=4.3", "r-base"),
        ("foo[channel=conda-forge]", "foo"),
        ("conda-forge:blas=1.0=mkl", "blas"),
        ("pkg[url=https://example.org/c/noarch/pkg-1.0-0.conda]", "pkg"),
        ("dask[complete]", None),
        ("*[name=x]", None),
        ("", None),
    ],
)
def test_spec_name(spec, name):
    assert spec_name(spec) == name

"""The strip policy: defaults, the project's pyproject.toml, server overrides, errors, caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_repro.notebooks import policy as policy_module
from jupyter_repro.notebooks.policy import (
    DEFAULT_POLICY,
    SERVER_SOURCE,
    PolicyError,
    StripPolicy,
    check_overrides,
    find_pyproject,
    load_policy,
    policy_summary,
)
from jupyter_repro.notebooks.strip import NBSTRIPOUT_EXTRA_KEYS, StripOptions

# A time safely in the past: files and folders this old are not "racily" fresh, so the
# caches keep them.
OLD = time.time() - 3600


@pytest.fixture(autouse=True)
def fresh_caches():
    policy_module.clear_caches()
    yield
    policy_module.clear_caches()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder standing for a git work tree's root, so no file above the test's folder counts."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    return root


def pyproject(folder: Path, table: str | None, *, age: float | None = None) -> Path:
    """Write folder/pyproject.toml with `table` as [tool.jupyter_repro.strip] (None: none)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = '[project]\nname = "demo"\n'
    if table is not None:
        text += "\n[tool.jupyter_repro.strip]\n" + table
    path = folder / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    if age is not None:
        make_old(path, age)
    return path


def make_old(path: Path, when: float = OLD) -> None:
    os.utime(path, (when, when))


def age_tree(root: Path) -> None:
    """Every folder from root down old: lookups through them get cached."""
    for folder, _, _ in os.walk(root):
        make_old(Path(folder))


# -- defaults and resolution -----------------------------------------------------------------


def test_without_pyproject_the_defaults_are_nbstripouts_but_on_save_keep_id_and_metadata(
    project,
):
    # ... and fingerprints of removed outputs (not nbstripout's: tests/test_fingerprint.py)
    result = load_policy(project / "a" / "nb.ipynb")

    assert result == DEFAULT_POLICY
    assert result.sources == ()
    assert result.on_save is True
    assert result.options == StripOptions(keep_id=True, notebook_overrides=True, fingerprint=True)
    assert result.options.keep_output is None
    assert result.options.extra_keys == NBSTRIPOUT_EXTRA_KEYS


def test_the_nearest_pyproject_wins_even_without_a_table(project):
    pyproject(project, "keep_count = true\n")
    pyproject(project / "sub", None)  # its own project: the root's table does not apply
    (project / "sub" / "deep").mkdir()

    in_sub = load_policy(project / "sub" / "deep" / "nb.ipynb")
    beside_root = load_policy(project / "other" / "nb.ipynb")

    assert in_sub == DEFAULT_POLICY
    assert beside_root.options.keep_count is True
    assert beside_root.sources == (str(project / "pyproject.toml"),)


def test_notebooks_in_subfolders_inherit_the_projects_table(project):
    path = pyproject(project, "keep_output = true\non_save = false\n")

    result = load_policy(project / "a" / "b" / "c" / "nb.ipynb")

    assert result.options.keep_output is True
    assert result.on_save is False
    assert result.sources == (str(path),)


def test_the_walk_stops_at_a_git_work_trees_root(tmp_path):
    pyproject(tmp_path, "keep_count = true\n")  # outside the repository
    repository = tmp_path / "repository"
    (repository / ".git").mkdir(parents=True)

    assert find_pyproject(repository / "nbs") is None
    assert load_policy(repository / "nbs" / "nb.ipynb") == DEFAULT_POLICY


def test_a_git_file_of_a_worktree_also_ends_the_walk(tmp_path):
    pyproject(tmp_path, "keep_count = true\n")
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere/.git/worktrees/w\n")

    assert load_policy(worktree / "nb.ipynb").options.keep_count is False


def test_a_pyproject_beside_dot_git_is_the_repositorys(project):
    path = pyproject(project, "keep_count = true\n")

    assert find_pyproject(project / "x" / "y") == str(path)


def test_an_empty_table_names_the_file_as_a_source(project):
    path = pyproject(project, "")

    result = load_policy(project / "nb.ipynb")

    assert result.sources == (str(path),)
    assert result.options == DEFAULT_POLICY.options


def test_every_key(project):
    pyproject(
        project,
        "\n".join(
            [
                "on_save = false",
                "keep_output = true",
                "keep_count = true",
                "keep_id = false",
                'extra_keys = ["metadata.language_info.version", "cell.metadata.foo"]',
                'keep_metadata_keys = ["cell.metadata.scrolled"]',
                "drop_empty_cells = true",
                'drop_tagged_cells = ["scratch", "private"]',
                "strip_init_cells = true",
                'max_size = "10k"',
                'keep_output_types = ["stream:stdout", "display_data"]',
                'drop_output_types = ["stream:stderr"]',
                "fingerprint = false",
                'fingerprint_max_text = "2k"',
                "",
            ]
        ),
    )

    result = load_policy(project / "nb.ipynb")

    assert result.on_save is False
    assert result.options == StripOptions(
        keep_output=True,
        keep_count=True,
        keep_id=False,
        extra_keys=(*NBSTRIPOUT_EXTRA_KEYS, "metadata.language_info.version", "cell.metadata.foo"),
        keep_metadata_keys=("cell.metadata.scrolled",),
        drop_empty_cells=True,
        drop_tagged_cells=("scratch", "private"),
        strip_init_cells=True,
        max_size=10_000,
        keep_output_types=frozenset({"stream:stdout", "display_data"}),
        drop_output_types=frozenset({"stream:stderr"}),
        notebook_overrides=True,
        fingerprint=False,
        fingerprint_max_text=2000,
    )


def test_extra_keys_are_added_to_nbstripouts_once(project):
    pyproject(project, 'extra_keys = ["metadata.widgets", "metadata.a", "metadata.a"]\n')

    keys = load_policy(project / "nb.ipynb").options.extra_keys

    assert keys == (*NBSTRIPOUT_EXTRA_KEYS, "metadata.a")


@pytest.mark.parametrize(
    ("value", "size"),
    [("0", 0), ("500", 500), ("10k", 10_000), ("10K", 10_000), ("1M", 10**6), ("2g", 2 * 10**9)],
)
def test_max_size_reads_nbstripouts_size_strings(project, value, size):
    pyproject(project, f'max_size = "{value}"\n')

    assert load_policy(project / "nb.ipynb").options.max_size == size


def test_max_size_also_takes_an_integer(project):
    pyproject(project, "max_size = 2048\n")

    assert load_policy(project / "nb.ipynb").options.max_size == 2048


def test_server_overrides_beat_the_pyproject_key_by_key(project):
    path = pyproject(project, "keep_count = true\nkeep_output = true\n")

    result = load_policy(project / "nb.ipynb", {"keep_output": False, "max_size": "1k"})

    assert result.options.keep_count is True  # from the file
    assert result.options.keep_output is False  # the server's
    assert result.options.max_size == 1000
    assert result.sources == (str(path), SERVER_SOURCE)


def test_server_overrides_alone(project):
    result = load_policy(project / "nb.ipynb", {"on_save": False})

    assert result.on_save is False
    assert result.sources == (SERVER_SOURCE,)
    assert load_policy(project / "nb.ipynb", {}).sources == ()


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("keep_outputs = true\n", ["'keep_outputs'", "unknown", "keep_output"]),
        ('keep_output = "yes"\n', ["'keep_output'", "true or false", "'yes'"]),
        ("keep_count = 1\n", ["'keep_count'", "true or false"]),
        ('extra_keys = "metadata.widgets"\n', ["'extra_keys'", "list of non-empty strings"]),
        ('extra_keys = ["widgets"]\n', ["'extra_keys'", "'metadata.' or 'cell.'", "'widgets'"]),
        ('keep_metadata_keys = ["x.y"]\n', ["'keep_metadata_keys'", "'x.y'"]),
        ("drop_tagged_cells = [1]\n", ["'drop_tagged_cells'", "list of non-empty strings"]),
        ('drop_tagged_cells = [""]\n', ["'drop_tagged_cells'", "non-empty"]),
        ('max_size = "10x"\n', ["'max_size'", "'10k'", "'10x'"]),
        ("max_size = -1\n", ["'max_size'", "non-negative"]),
        ("max_size = true\n", ["'max_size'", "integer"]),
        ('drop_output_types = ["stream stderr"]\n', ["'drop_output_types'", "stream:stderr"]),
        ("on_save = []\n", ["'on_save'", "true or false"]),
    ],
)
def test_bad_settings_name_the_file_the_key_and_what_is_expected(project, table, words):
    path = pyproject(project, table)

    with pytest.raises(PolicyError) as raised:
        load_policy(project / "nb.ipynb")

    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert raised.value.source == str(path)
    for word in words:
        assert word in message


def test_invalid_toml_names_the_file(project):
    path = project / "pyproject.toml"
    path.write_text("[tool.jupyter_repro.strip]\nkeep_output = \n")

    with pytest.raises(PolicyError, match="not valid TOML") as raised:
        load_policy(project / "nb.ipynb")

    assert str(raised.value).startswith(f"{path}: ")


def test_a_strip_entry_that_is_not_a_table(project):
    path = project / "pyproject.toml"
    path.write_text("[tool.jupyter_repro]\nstrip = true\n")

    with pytest.raises(PolicyError, match=r"\[tool\.jupyter_repro\.strip\] must be a table"):
        load_policy(project / "nb.ipynb")


def test_a_broken_pyproject_is_an_error_every_time_not_only_the_first(project):
    pyproject(project, "bogus = 1\n", age=OLD)

    for _ in range(2):
        with pytest.raises(PolicyError, match="bogus"):
            load_policy(project / "nb.ipynb")


def test_bad_overrides_name_the_server_configuration():
    with pytest.raises(PolicyError) as raised:
        check_overrides({"keep_count": "no"})

    assert str(raised.value).startswith(f"{SERVER_SOURCE}: 'keep_count' must be true or false")
    with pytest.raises(PolicyError, match="unknown strip policy key 'strip'"):
        check_overrides({"strip": True})
    check_overrides({"keep_count": True, "max_size": "1M", "extra_keys": ["metadata.x"]})


# -- caches ----------------------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The pyproject.toml files actually parsed."""
    parsed: list[str] = []
    real = policy_module._read_settings

    def counting(path: str):
        parsed.append(path)
        return real(path)

    monkeypatch.setattr(policy_module, "_read_settings", counting)
    return parsed


def test_a_pyproject_is_parsed_once_for_many_notebooks(project, reads):
    pyproject(project, "keep_count = true\n", age=OLD)

    for index in range(50):
        assert load_policy(project / f"d{index % 3}" / f"{index}.ipynb").options.keep_count

    assert reads == [str(project / "pyproject.toml")]


def test_an_edited_pyproject_is_read_again(project, reads):
    path = pyproject(project, "keep_count = true\n", age=OLD)
    assert load_policy(project / "nb.ipynb").options.keep_count is True

    pyproject(project, "keep_count = false\nkeep_id = false\n", age=OLD + 10)
    result = load_policy(project / "nb.ipynb")

    assert result.options.keep_count is False
    assert result.options.keep_id is False
    assert reads == [str(path), str(path)]


def test_an_edit_within_the_same_timestamp_and_size_is_seen(project):
    # The racy case a (mtime, size) stamp cannot tell apart: a fresh file is never cached.
    path = pyproject(project, "keep_count = true \n")
    stamp = path.stat().st_mtime_ns
    assert load_policy(project / "nb.ipynb").options.keep_count is True

    pyproject(project, "keep_count = false\n")
    os.utime(path, ns=(stamp, stamp))

    assert load_policy(project / "nb.ipynb").options.keep_count is False


def test_a_new_pyproject_between_the_notebook_and_the_project_is_noticed(project):
    pyproject(project, "keep_count = true\n", age=OLD)
    notebook_folder = project / "a" / "b"
    notebook_folder.mkdir(parents=True)
    age_tree(project)
    assert load_policy(notebook_folder / "nb.ipynb").options.keep_count is True
    assert policy_module._lookup_cache  # the answer was cached...

    pyproject(project / "a", "keep_output = true\n")

    result = load_policy(notebook_folder / "nb.ipynb")  # ...and is checked
    assert result.options.keep_count is False
    assert result.options.keep_output is True


def test_a_removed_pyproject_is_noticed(project):
    path = pyproject(project / "a", "keep_output = true\n", age=OLD)
    age_tree(project)
    assert load_policy(project / "a" / "nb.ipynb").options.keep_output is True

    path.unlink()

    assert load_policy(project / "a" / "nb.ipynb") == DEFAULT_POLICY


# -- summary and imports ---------------------------------------------------------------------


def test_summary_is_json_with_the_policys_key_names(project):
    path = pyproject(project, 'keep_output = true\nmax_size = "1k"\n')
    result = load_policy(project / "nb.ipynb", {"on_save": False})

    summary = json.loads(json.dumps(policy_summary(result)))

    assert summary["on_save"] is False
    assert summary["keep_output"] is True
    assert summary["sources"] == [str(path), SERVER_SOURCE]
    assert summary["options"]["max_size"] == 1000
    assert summary["options"]["extra_keys"] == list(NBSTRIPOUT_EXTRA_KEYS)
    assert summary["options"]["notebook_overrides"] is True
    assert set(summary["options"]) >= set(policy_module.POLICY_KEYS) - {"on_save"}


def test_default_summary_says_outputs_are_stripped():
    summary = policy_summary(StripPolicy(DEFAULT_POLICY.options))

    assert summary["keep_output"] is False
    assert summary["on_save"] is True
    assert summary["sources"] == []


def test_the_module_imports_no_server_libraries():
    # The git filter's per-file command imports it: a server import would cost every file.
    code = (
        "import sys, jupyter_repro.notebooks.policy\n"
        "print([m for m in ('jupyter_server', 'traitlets', 'nbformat', 'tornado')"
        " if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"

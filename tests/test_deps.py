"""`make setup`'s RTNeural provisioning, with local git repositories standing in for GitHub: a
fresh clone, reuse, a checkout at the wrong commit, an unreachable remote, RTNEURAL_DIR left alone."""

import subprocess
from pathlib import Path

import pytest

from common import deps, rtneural


def git(*args, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "protocol.file.allow=always", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def remotes(tmp_path_factory):
    """An "xsimd" repository and an "RTNeural" one with it as modules/xsimd, like the real layout."""
    root = tmp_path_factory.mktemp("remotes")
    xsimd = root / "xsimd"
    (xsimd / "include" / "xsimd").mkdir(parents=True)
    (xsimd / "include" / "xsimd" / "xsimd.hpp").write_text("// xsimd\n")
    git("init", "-q", "-b", "main", cwd=xsimd)
    git("add", ".", cwd=xsimd)
    git("commit", "-qm", "xsimd", cwd=xsimd)
    rt = root / "RTNeural"
    (rt / "RTNeural").mkdir(parents=True)
    (rt / "RTNeural" / "RTNeural.h").write_text("#pragma once\n")
    (rt / "modules" / "json").mkdir(parents=True)
    (rt / "modules" / "json" / "json.hpp").write_text("// json\n")
    git("init", "-q", "-b", "main", cwd=rt)
    git("submodule", "add", "-q", str(xsimd), "modules/xsimd", cwd=rt)
    git("add", ".", cwd=rt)
    git("commit", "-qm", "first", cwd=rt)
    first = git("rev-parse", "HEAD", cwd=rt)
    (rt / "RTNeural" / "RTNeural.h").write_text("#pragma once // v2\n")
    git("commit", "-qam", "second", cwd=rt)
    return {
        "url": str(rt),
        "xsimd_url": str(xsimd),
        "pin": first,
        "later": git("rev-parse", "HEAD", cwd=rt),
        "xsimd_pin": git("rev-parse", "HEAD", cwd=xsimd),
    }


def provision(dest, remotes, **changes):
    args = {k: remotes[k] for k in ("url", "pin", "xsimd_url", "xsimd_pin")}
    return deps.provision(dest, **{**args, **changes})


def test_clone_then_reuse(tmp_path, remotes, monkeypatch):
    monkeypatch.delenv("RTNEURAL_DIR", raising=False)
    dest = tmp_path / ".deps" / "RTNeural"
    assert "fetched" in provision(dest, remotes)
    assert deps.head(dest) == remotes["pin"] and deps.head(dest / "modules/xsimd") == remotes["xsimd_pin"]
    assert (dest / "modules" / "xsimd" / "include" / "xsimd" / "xsimd.hpp").exists()
    assert "v2" not in (dest / "RTNeural" / "RTNeural.h").read_text()  # the pin, not the newest commit
    stamp = (dest / ".git").stat().st_mtime_ns
    assert "already" in provision(dest, remotes)
    assert (dest / ".git").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in dest.parent.iterdir()) == ["RTNeural"]  # no temp folder left


def test_a_checkout_at_the_wrong_commit_is_replaced(tmp_path, remotes, monkeypatch):
    monkeypatch.delenv("RTNEURAL_DIR", raising=False)
    dest = tmp_path / "RTNeural"
    provision(dest, remotes, pin=remotes["later"])
    assert deps.head(dest) == remotes["later"]
    assert "fetched" in provision(dest, remotes)
    assert deps.head(dest) == remotes["pin"]


def test_an_unreachable_remote_says_so_and_leaves_nothing(tmp_path, remotes, monkeypatch):
    monkeypatch.delenv("RTNEURAL_DIR", raising=False)
    dest = tmp_path / "RTNeural"
    message = provision(dest, remotes, url=str(tmp_path / "no-such-remote"))
    assert message.startswith("RTNeural not fetched (") and "the generated engine works without it" in message
    assert "set RTNEURAL_DIR to a checkout of" in message and remotes["pin"] in message
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_an_unknown_pin_is_not_installed(tmp_path, remotes, monkeypatch):
    monkeypatch.delenv("RTNEURAL_DIR", raising=False)
    dest = tmp_path / "RTNeural"
    assert "not fetched" in provision(dest, remotes, pin="0" * 40)
    assert not dest.exists()


def test_rtneural_dir_wins_and_is_not_touched(tmp_path, remotes, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv("RTNEURAL_DIR", str(mine))
    assert "left as it is" in provision(tmp_path / "RTNeural", remotes)
    assert list(mine.iterdir()) == [] and not (tmp_path / "RTNeural").exists()


def test_setup_runs_it_and_succeeds_offline(tmp_path):
    """`python -m common.deps` with the real (unreachable here) remote or a stand-in: exit 0, one line."""
    env = {"RTNEURAL_URL": str(tmp_path / "nowhere"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [deps.sys.executable, "-m", "common.deps"], cwd=rtneural.PROJECT, env=env, capture_output=True, text=True
    )
    if rtneural.DEPS_DIR.exists():  # this checkout has one already at the pins: reused, not fetched
        assert done.returncode == 0 and len(done.stdout.strip().splitlines()) == 1
    else:
        assert done.returncode == 0 and done.stdout.startswith("RTNeural not fetched")

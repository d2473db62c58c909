"""The command lines as their users expect: every subcommand's --help shows its defaults (once),
--version gives the installed version, `python -m bench` is bench, `--models` builds a harness of
the picked models only (an unknown name refused up front with the names the export has), `--device`
takes an SSH config alias, and `bench export` / `bench compare --junit` write where they are told."""

import argparse
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata

import pytest

from bench import cli as bench_cli
from bench import results, trackers
from common import cli, manifest, remote
from exporter import cli as exporter_cli
from tests import test_boards
from tests.conftest import ROOT
from tests.test_report import make_doc, save
from trainer import cli as trainer_cli

TOOLS = {"bench": bench_cli, "python -m exporter": exporter_cli, "python -m trainer": trainer_cli}
board = test_boards.board  # the loopback sshd, started once for this module


def subcommands(parser: argparse.ArgumentParser, path=()):
    """(argv, parser) of the parser and of every subcommand under it, nested ones too."""
    yield list(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subcommands(sub, (*path, name))


HELPS = [(prog, argv, p) for prog, tool in TOOLS.items() for argv, p in subcommands(tool.create_parser())]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("prog, argv, parser", HELPS, ids=[" ".join([p, *a]) for p, a, _ in HELPS])
def test_every_help_exits_0_and_shows_each_default_once(prog, argv, parser, capsys):
    with pytest.raises(SystemExit) as exit_:
        TOOLS[prog].main([*argv, "--help"])
    assert exit_.value.code == 0
    text = flat(capsys.readouterr().out)
    assert text.startswith(f"usage: {' '.join([prog, *argv])}")
    for action in parser._actions:
        default = action.default
        if default in (None, argparse.SUPPRESS, [], "") or isinstance(default, bool) or not action.help:
            continue
        assert flat(f"(default: {cli.shown(default)})") in text, action.dest
        assert "(default" not in action.help, f"{action.dest}: a default written by hand beside argparse's"


def test_defaults_inside_the_project_are_shown_as_the_readme_writes_them(capsys):
    with pytest.raises(SystemExit):
        bench_cli.main(["run", "--help"])
    text = flat(capsys.readouterr().out)
    assert "(default: build/models)" in text and "(default: reports/runs)" in text and str(ROOT) not in text


@pytest.mark.parametrize("prog", TOOLS)
def test_version_is_the_installed_distributions(prog, capsys):
    with pytest.raises(SystemExit) as exit_:
        TOOLS[prog].main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"{prog} {metadata.version(cli.distribution())} ({cli.distribution()})\n"


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--version"], f"bench {metadata.version('rt-music-bench')}"),
        (["--help"], "usage: bench [-h] [--version] COMMAND ..."),
        (["targets"], "toolchain"),
    ],
)
def test_python_m_bench_is_bench(argv, says):
    done = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert says in done.stdout


def run_argv(command: str, exported, tmp_path, *extra: str) -> list[str]:
    """`bench run` or `bench compare-engines` on the small export, writing only under tmp_path."""
    out = ["--out", str(tmp_path / "runs")] if command == "run" else ["--runs", str(tmp_path / "runs")]
    if command == "compare-engines":
        out += ["--out", str(tmp_path / "peers"), "--python-engines", "none"]
    else:
        out += ["--target", "x86", "--engine", "generated"]
    return [command, *out, "--models-dir", str(exported), "--build-dir", str(tmp_path / "pio"), *extra]


@pytest.mark.parametrize("command", ["run", "compare-engines"])
@pytest.mark.parametrize(
    "models, says",
    [
        ("nosuch", "--models: unknown model 'nosuch'; {exported} has dynamics_engine, groove_predictor"),
        (
            "groove_predictor,GroovePredictor",
            "--models 'groove_predictor,GroovePredictor': groove_predictor is named twice",
        ),
        ("groove_predictor,,", "--models 'groove_predictor,,': an empty name; give comma-separated names or all"),
    ],
)
def test_models_a_bad_choice_is_refused_before_any_work(command, models, says, exported, tmp_path, capsys):
    assert bench_cli.main(run_argv(command, exported, tmp_path, "--models", models)) == 2
    assert capsys.readouterr().err.endswith(f"error: {says.format(exported=exported)}\n")
    assert not (tmp_path / "pio").exists() and not list((tmp_path / "runs").glob("*"))


def test_models_builds_a_harness_of_the_picked_models_only(exported, tmp_path, pio_ready, capsys):
    argv = run_argv("run", exported, tmp_path, "--models", "GroovePredictor", "--blocks", "20", "--warmup", "2")
    docs = []
    for _ in range(2):  # the second run reuses the picked export and its build
        assert bench_cli.main(argv) == 0, capsys.readouterr()
        (path,) = set((tmp_path / "runs").iterdir()) - {d[0] for d in docs}
        docs.append((path, results.load(path)))
    err = capsys.readouterr().err
    assert "models: groove_predictor (1 of 2 in" in err and "the harness is built with these alone" in err
    first, second = (doc for _, doc in docs)
    assert list(first["models"]) == ["groove_predictor"] and first["parity_ok"]  # the result lists what it measured
    assert list(first["build"]["symbols"]["models"]) == ["groove_predictor"]
    assert second["build"]["reused"] and not first["build"]["reused"]
    picked = tmp_path / "pio" / "picked-groove_predictor" / "models"
    doc, source = manifest.load(picked), manifest.load(exported)
    assert manifest.models(doc) == ["groove_predictor"]
    own = [f for f in doc["sha256"] if f.startswith("groove_predictor.")]  # its headers, JSON and vectors
    assert own and all(doc["sha256"][f] == source["sha256"][f] for f in own)  # byte for byte the export's


def test_models_all_or_every_name_is_the_export_as_it_is(exported, tmp_path):
    from bench import run

    options = run.Options(target="x86", models_dir=exported)
    assert run.with_picked(options) is options
    every = run.Options(target="x86", models_dir=exported, models=("groove_predictor", "dynamics_engine"))
    assert run.with_picked(every) == options  # in any order: no picked export, no build folder of its own


def ssh_config(tmp_path, text: str):
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "config, alias, expected",
    [
        (
            "Host rpi4\n  HostName 10.1.2.3\n  User pi\n  Port 2222\n  IdentityFile {key}\n",
            "rpi4",
            remote.Address("pi", "10.1.2.3", 2222, "{key}", "rpi4"),
        ),
        (  # a pattern, and settings from two blocks: the first value of each wins, as in ssh
            "Host lab-*\n  User tester\nHost lab-pi\n  HostName pi.lab.example\n  User other\n",
            "lab-pi",
            remote.Address("tester", "pi.lab.example", 22, None, "lab-pi"),
        ),
    ],
)
def test_device_alias_resolves_as_ssh_resolves_it(config, alias, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no default identity of the machine's user is picked up
    key = tmp_path / "pi_key"
    key.write_text("not a real key: only its path is read\n")
    got = remote.address(alias, ssh_config(tmp_path, config.format(key=key)))
    want = expected.keyfile and expected.keyfile.format(key=key)
    assert got == remote.Address(expected.user, expected.host, expected.port, want, expected.alias)
    assert got.name == f"{alias} ({expected.user}@{expected.host}:{expected.port})"


@pytest.mark.parametrize(
    "device, ssh_config_file, says",
    [
        ("-oProxyCommand=x", None, "--device '-oProxyCommand=x': give the board as user@host"),
        ("pi@", None, "--device 'pi@': give the board as user@host"),
        ("rpi4", "missing", "missing: no such SSH config file (--ssh-config)"),
    ],
)
def test_device_that_names_no_board_is_refused(device, ssh_config_file, says, tmp_path):
    config = tmp_path / ssh_config_file if ssh_config_file else None
    with pytest.raises(Exception, match=re.escape(says)):
        remote.address(device, config)


def test_device_alias_reaches_the_board_ssh_reaches(board, exported, tmp_path, capsys):
    """The loopback board by an alias of a temporary SSH config (ssh -F): labgrid logs in with the
    alias's host, port, user and key; `bench run` then refuses the board's machine, before a build."""
    device, key, _ = board
    user, _, rest = device.partition("@")
    host, _, port = rest.partition(":")
    config = ssh_config(
        tmp_path, f"Host loopback\n  HostName {host}\n  Port {port}\n  User {user}\n  IdentityFile {key}\n"
    )
    connected = remote.connect("loopback", timeout=3, ssh_config=config)
    try:
        assert connected.machine() == "x86_64" and connected.label == "loopback"
        assert connected.name == f"loopback ({user}@{host}:{port})"
    finally:
        connected.close()
    argv = ["run", "--target", "aarch64", "--engine", "generated-int8", "--models-dir", str(exported)]
    argv += ["--out", str(tmp_path / "runs"), "--build-dir", str(tmp_path / "pio")]
    argv += ["--device", "loopback", "--ssh-config", str(config), "--connect-timeout", "3"]
    assert bench_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"board loopback ({user}@{host}:{port}) is x86_64 (uname -m); the aarch64 build runs on aarch64" in err
    assert not (tmp_path / "pio").exists()


@pytest.mark.parametrize("fmt", trackers.FORMATS)
def test_bench_export_to_stdout_or_a_file(fmt, tmp_path, capsys):
    runs = save([make_doc(), make_doc(engine="stl")], tmp_path / "runs")
    expected = trackers.export(results.load_many([runs])[0], fmt)
    assert bench_cli.main(["export", str(runs), "--format", fmt]) == 0
    assert capsys.readouterr().out == expected
    out = tmp_path / "out" / f"results.{fmt}"
    assert bench_cli.main(["export", str(runs), "--format", fmt, "--out", str(out)]) == 0
    assert out.read_text() == expected and capsys.readouterr().out == ""


def test_bench_export_of_no_results_names_the_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert bench_cli.main(["export", str(tmp_path / "empty"), "--format", trackers.FORMATS[0]]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'empty'}: no result files to export\n"


@pytest.mark.parametrize("current, code, failures", [({}, 0, 0), ({"text": 20_000}, 1, 1)])
def test_bench_compare_writes_junit_whether_the_gate_passes_or_fails(current, code, failures, tmp_path):
    base = save([make_doc()], tmp_path / "base")
    now = save([make_doc(**current)], tmp_path / "now")
    junit = tmp_path / "gate.xml"
    assert bench_cli.main(["compare", str(base), str(now), "--junit", str(junit)]) == code
    root = ET.fromstring(junit.read_text())
    assert int(root.get("failures")) == failures and int(root.get("tests")) > 0


def test_interrupted_run_says_what_it_kept(monkeypatch, tmp_path, capsys):
    from bench import run

    def interrupted(options, saved):
        saved.append(tmp_path / "first.json")
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "run", interrupted)
    assert bench_cli.main(["run", "--target", "x86", "--out", str(tmp_path)]) == cli.INTERRUPTED
    assert f"1 result(s) saved; the run in progress was not saved\n  kept {tmp_path / 'first.json'}" in (
        capsys.readouterr().err
    )


def test_nothing_builds_an_argparse_namespace_by_hand():
    """Commands hand each other typed options (run.Options), never a Namespace made up to look parsed."""
    offenders = [
        str(p.relative_to(ROOT))
        for package in ("bench", "common", "exporter", "trainer")
        for p in sorted((ROOT / package).rglob("*.py"))
        if "Namespace(" in p.read_text()
    ]
    assert offenders == []

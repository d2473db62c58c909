"""Real boards over SSH, through labgrid, against a real SSH server (Debian's openssh-server) that
these tests start on 127.0.0.1 with throw-away keys. On that loopback "board" the ARM program runs
under qemu-aarch64, the board's run prefix; the program is deployed, run and its results brought
back exactly as on a Raspberry Pi. A labgrid coordinator and exporter on 127.0.0.1 serve the same
board as a place. Bad cases: unreachable, refused, wrong machine, killed: each an error naming
the board, and no result written."""

import getpass
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench import build as bench_build
from bench import cli
from tests.test_bench import run_bench

SSHD = Path("/usr/sbin/sshd")
PREFIX = "qemu-aarch64 -cpu cortex-a72"
TOOLS = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    for _ in range(100):
        if process.poll() is not None:
            pytest.fail(f"{what} exited: {process.stdout.read() if process.stdout else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"{what} is not listening on {port}")


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """(device, key, folder): an sshd on 127.0.0.1 that lets in one throw-away key."""
    if not SSHD.exists():
        pytest.fail(f"{SSHD} missing: make setup installs openssh-server")
    root = tmp_path_factory.mktemp("board")
    for name in ("host", "client", "stranger"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "client.pub").read_text())
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    options = {
        "ListenAddress": "127.0.0.1",
        "AuthorizedKeysFile": str(root / "authorized_keys"),
        "StrictModes": "no",
        "PidFile": "none",
        "UsePAM": "no",
        "Subsystem": "sftp internal-sftp",  # scp speaks SFTP
    }
    args = [str(SSHD), "-D", "-e", "-f", "/dev/null", "-p", str(port), "-h", str(root / "host")]
    args += [a for k, v in options.items() for a in ("-o", f"{k}={v}")]
    sshd = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_port(port, sshd, "sshd")
    yield f"{getpass.getuser()}@127.0.0.1:{port}", root / "client", root / "remote"
    sshd.terminate()
    sshd.wait(timeout=10)


def on_board(board, *extra):
    device, key, folder = board
    return ["--device", device, "--ssh-key", str(key), "--remote-dir", str(folder), "--connect-timeout", "3", *extra]


def test_bench_runs_on_a_board_over_ssh(board, exported, tmp_path, pio_ready, capsys):
    """Built here, deployed, run and checked on the board, the results brought back."""
    code, doc = run_bench("aarch64", "generated-int8", exported, tmp_path, *on_board(board, "--run-prefix", PREFIX))
    assert code == 0, capsys.readouterr()
    assert doc["target"]["run"] == "board" and doc["target"]["name"].startswith("aarch64@127.0.0.1-")
    assert doc["target"]["device"]["machine"] == "aarch64" and doc["target"]["device"]["run_prefix"] == PREFIX
    assert doc["timing"]["kind"] == "emulated"  # a run prefix: not a real board's time
    assert doc["parity_ok"] and doc["heap"]["forward_allocations"] == 0
    assert (board[2] / "rpi-generated-int8" / "program").is_file()


def no_result(tmp_path) -> bool:
    return not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_board_of_another_machine_is_refused_before_anything_runs(board, exported, tmp_path, pio_ready, capsys):
    folder = tmp_path / "remote"
    code, _ = run_bench("aarch64", "generated-int8", exported, tmp_path, *on_board(board, "--remote-dir", str(folder)))
    err = capsys.readouterr().err
    assert code == 2 and f"board {board[0]} is x86_64 (uname -m); the aarch64 build runs on aarch64" in err
    assert no_result(tmp_path) and not folder.exists()


@pytest.mark.parametrize("case", ["unreachable", "refused"])
def test_a_board_that_cannot_be_reached_or_refuses_the_key(case, board, exported, tmp_path, capsys):
    device, key, folder = board
    if case == "unreachable":
        device = f"root@127.0.0.1:{free_port()}"  # nothing listens there
    else:
        key = key.with_name("stranger")
    code, _ = run_bench("aarch64", "generated-int8", exported, tmp_path, *on_board((device, key, folder)))
    err = capsys.readouterr().err
    expected = "Connection refused" if case == "unreachable" else "Permission denied"
    assert code == 2 and f"error: board {device}: cannot connect over SSH: " in err and expected in err
    assert "Traceback" not in err and no_result(tmp_path)


def test_a_program_killed_on_the_board_saves_no_result(board, exported, tmp_path, pio_ready, capsys):
    """The emulator running the program is killed mid-run on the board (as the OOM killer would)."""
    stop = threading.Event()

    def killer():
        while not stop.is_set():
            if subprocess.run(["pkill", "-9", "-f", f"{PREFIX} ./program"]).returncode == 0:
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        code = cli.main(
            [
                *("run", "--target", "aarch64", "--engine", "generated-int8", "--blocks", "20000"),
                *("--models-dir", str(exported), "--out", str(tmp_path / "runs"), "--build-dir", str(tmp_path / "pio")),
                *on_board(board, "--run-prefix", PREFIX),
            ]
        )
    finally:
        stop.set()
        thread.join()
    err = capsys.readouterr().err
    assert code == 2 and f"board {board[0]}: the program was killed there (signal 9); no result is saved" in err
    assert no_result(tmp_path)


@pytest.fixture
def place(board, tmp_path):
    """A labgrid coordinator and an exporter of the loopback board's NetworkService, on 127.0.0.1,
    and a place matching it: (coordinator address, place name)."""
    device, _, _ = board
    user, _, rest = device.partition("@")
    host, _, port = rest.partition(":")
    config = tmp_path / "exporter.yaml"
    config.write_text(f"loopback:\n  NetworkService:\n    address: {host}\n    username: {user}\n    port: {port}\n")
    address = f"127.0.0.1:{free_port()}"
    processes = []
    try:
        coordinator = subprocess.Popen(
            [str(TOOLS / "labgrid-coordinator"), "-l", address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        processes.append(coordinator)
        wait_for_port(int(address.rsplit(":", 1)[1]), coordinator, "labgrid-coordinator")
        exporter = [str(TOOLS / "labgrid-exporter"), "-c", address, "-n", "lab", "--hostname", "127.0.0.1", str(config)]
        processes.append(subprocess.Popen(exporter, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        client = [str(TOOLS / "labgrid-client"), "-x", address, "-p", "loopback"]
        subprocess.run([*client, "create"], check=True, capture_output=True)
        subprocess.run([*client, "add-match", "lab/loopback/NetworkService"], check=True, capture_output=True)
        for _ in range(100):  # until the exporter has announced the resource
            shown = subprocess.run([*client, "show"], capture_output=True, text=True).stdout
            if "Matching resource 'NetworkService'" in shown:
                break
            time.sleep(0.1)
        yield address, "loopback"
    finally:
        for p in reversed(processes):
            p.terminate()
            p.wait(timeout=10)


def test_bench_runs_on_a_labgrid_place(place, board, exported, tmp_path, pio_ready, capsys):
    """--place acquires the board from the coordinator for the run and releases it after."""
    address, name = place
    _, key, folder = board
    extra = ["--place", name, "--coordinator", address, "--ssh-key", str(key), "--remote-dir", str(folder)]
    code, doc = run_bench("aarch64", "generated-int8", exported, tmp_path, *extra, "--run-prefix", PREFIX)
    assert code == 0, capsys.readouterr()
    assert doc["target"]["name"] == "aarch64@loopback" and doc["target"]["device"]["name"] == "place loopback"
    assert doc["parity_ok"]
    shown = subprocess.run(
        [str(TOOLS / "labgrid-client"), "-x", address, "-p", name, "show"], capture_output=True, text=True
    ).stdout
    assert "acquired: None" in shown  # released


def test_pio_upload_puts_the_program_on_the_board(board, exported, tmp_path, pio_ready):
    """`pio run -e rpi -t upload --upload-port user@host:port`, as a PlatformIO user deploys."""
    device, key, folder = board
    env = bench_build.pio_env("generated", tmp_path / "pio", exported)
    env["PLATFORMIO_UPLOAD_FLAGS"] = f'--key {key} --remote-dir {folder / "up"} --run-prefix "{PREFIX}"'
    command = ["pio", "run", "-e", "rpi", "-t", "upload", "--upload-port", device]
    done = subprocess.run(command, cwd=bench_build.PROJECT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    uploaded = folder / "up" / "rpi" / "program"
    assert uploaded.is_file() and uploaded.read_bytes() == (tmp_path / "pio" / "rpi" / "program").read_bytes()
    assert f"uploaded program to {device}" in done.stdout
    env["PLATFORMIO_UPLOAD_FLAGS"] = f"--key {key} --remote-dir {folder / 'up2'}"  # no emulator: x86_64 board
    done = subprocess.run(command, cwd=bench_build.PROJECT, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "is x86_64 (uname -m); this aarch64 program does not run there" in done.stderr
    assert not (folder / "up2").exists()

"""Real boards over SSH, through labgrid, against a real SSH server (Debian's openssh-server) that
these tests start on 127.0.0.1 with throw-away keys. On that loopback "board" the ARM program runs
under qemu-aarch64, the board's run prefix; the program is deployed, run and its results brought
back exactly as on a Raspberry Pi. A labgrid coordinator and exporter on 127.0.0.1 serve the same
board as a place. Bad cases: unreachable, refused, wrong machine, killed: each an error naming
the board, and no result written."""

import getpass
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench import boards, cli, mca
from bench import build as bench_build
from common.errors import SuiteError
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
        # in tmp_path: the coordinator keeps its places.yaml and resources.yaml in its working folder
        coordinator = subprocess.Popen(
            [str(TOOLS / "labgrid-coordinator"), "-l", address],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        processes.append(coordinator)
        wait_for_port(int(address.rsplit(":", 1)[1]), coordinator, "labgrid-coordinator")
        exporter = [str(TOOLS / "labgrid-exporter"), "-c", address, "-n", "lab", "--hostname", "127.0.0.1", str(config)]
        processes.append(subprocess.Popen(exporter, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path))
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


# Board profiles, memory fit and estimates (bench/boards.py, bench/mca.py): no board needed.


def test_every_board_profile_figure_has_its_source():
    profiles = {b["id"]: b for b in boards.load()}
    assert set(profiles) >= {"rpi4", "rpi5", "daisy-seed", "teensy41", "stm32h743"}
    for b in profiles.values():
        assert b["clock_source"] and b["peak_source"] and all(m["source"] for m in b["memories"])
        assert any(m.get("persistent") for m in b["memories"])  # somewhere to keep the program image
    assert profiles["daisy-seed"]["clock_hz"] == 480e6 and profiles["stm32h743"]["memories"][0]["bytes"] == 2 << 20


def test_a_broken_profile_names_the_file_and_the_field(tmp_path):
    doc = json.loads(boards.PATH.read_text())
    del doc["boards"][2]["clock_hz"]
    path = tmp_path / "boards.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match=r"boards\.json.*boards/2: 'clock_hz' is a required property"):
        boards.load(path)


def fake_result(weights: int, objects: int, dtype: str = "int8", counted: bool = True) -> dict:
    """A result with one model: `weights` bytes of constants and an object of `objects` bytes."""
    return {
        "id": "r1",
        "created": "2026-11-25T00:00:00+00:00",
        "target": {"name": "cortex-m7", "run": "qemu-system"},
        "engine": "generated",
        "backend": None,
        "dtype": dtype,
        "config": {"deadline_us": 10_666.7},
        "timing": {"kind": "counted" if counted else "emulated"},
        "set": {"latency_us": {"p50": 2000.0}},  # 2,000,000 instructions
        "models": {
            "m": {"parameters": 1_000_000, "weight_bytes": 4_000_000, "model_bytes": objects, "load_heap_bytes": 0}
        },
        "build": {
            "binary": {"data": 0},
            "symbols": {
                "models": {"m": {"code": 1000, "constants": weights}},
                "other": {"code": 9000, "constants": 0, "zeroed": objects},
            },
        },
        "hot_loop": {"instructions": 40, "macs_per_iteration": 32, "cycles_per_iteration": {"cortex-m7": 32.0}},
    }


BOARD = {
    "id": "toy",
    "name": "toy",
    "targets": ["cortex-m7"],
    "clock_hz": 1e9,
    "mca_cpu": "cortex-m7",
    "peak_macs_per_s": {"float32": 1e9, "float16": 1e9, "int8": 2e9},
    "cpi": [0.5, 2.0],
    "memories": [
        {"name": "flash", "bytes": 1_100_000, "bytes_per_s": 1e9, "roles": ["code", "constants"], "persistent": True},
        {"name": "ram", "bytes": 200_000, "bytes_per_s": 4e9, "roles": ["objects", "stack", "heap"]},
    ],
}


def test_the_fit_places_ram_first_and_says_what_does_not_fit():
    small = boards.fit(fake_result(1_000_000, 50_000), BOARD)
    assert small["fits"] and {p["part"]: p["memory"] for p in small["placed"]}["m weights"] == "flash"
    assert {m["name"]: m["headroom"] for m in small["memories"]} == {
        "flash": 90_000,
        "ram": 200_000 - 50_000 - boards.STACK_BYTES,
    }
    big = boards.fit(fake_result(1_200_000, 50_000), BOARD)  # the weights exceed the flash
    assert not big["fits"] and big["unplaced"][0]["part"] == "m weights"
    assert "program image" in big["unplaced"][-1]["part"]
    copy = boards.fit(fake_result(1_000_000, 150_000), BOARD)  # an object (RTNeural's copy) beyond the RAM
    assert not copy["fits"] and copy["unplaced"][0]["part"] == "m object"


def test_three_estimates_each_with_its_range():
    doc = fake_result(1_000_000, 50_000)
    placement = boards.fit(doc, BOARD)
    loop = {**doc["hot_loop"], "cycles_per_iteration": 32.0}
    by = {e["model"]: e for e in boards.estimates(doc, BOARD, placement, loop)}
    # roofline: 1 M multiply-adds at 2 G/s = 0.5 ms; 1 MB of weights from flash at 1 GB/s = 1 ms
    assert by["roofline"]["low_ms"] == pytest.approx(1.0) and by["roofline"]["high_ms"] == pytest.approx(1.5)
    # 2 M instructions at 1 GHz, 0.5-2 cycles each
    assert (by["instructions x clock"]["low_ms"], by["instructions x clock"]["high_ms"]) == pytest.approx((1.0, 4.0))
    # 31,250 iterations x 32 cycles = 1 ms in the loop; 2 M - 31,250 x 40 = 750,000 other instructions
    assert (by["llvm-mca"]["low_ms"], by["llvm-mca"]["high_ms"]) == pytest.approx((1.375, 2.5))
    emulated = boards.estimates(fake_result(1_000_000, 50_000, counted=False), BOARD, placement, loop)
    assert [e["model"] for e in emulated] == ["roofline", "llvm-mca"] and emulated[1]["high_ms"] is None


LISTING = """
00001000 <kernel>:
    1000:	ldr	r3, [r0], #4
    1004:	smlad	r4, r3, r5, r4
    1008:	smlad	r6, r3, r7, r6
    100c:	subs	r1, #1
    1010:	bne.n	1000 <kernel>
    1012:	bx	lr

00002000 <activation>:
    2000:	vfma.f32	s0, s1, s2
    2004:	vfma.f32	s3, s4, s5
    2008:	vfma.f32	s6, s7, s8
    200c:	vdiv.f32	s0, s0, s3
    2010:	bne.n	2000 <activation>

00003000 <straight>:
    3000:	fmla	v0.4s, v1.4s, v2.4s
    3004:	fmla	v3.4s, v1.4s, v2.4s
    3008:	bic	w0, w1, #0xf
    300c:	tbnz	w0, #3, 3004 <straight+0x4>
"""


def test_the_hot_loop_is_the_innermost_multiply_add_loop_without_division():
    found = mca.loops(LISTING)
    # bic is no branch; tbnz's target is its address operand, not the bit number before it
    assert [(f["start"], f["macs"], len(f["instructions"])) for f in found] == [(0x1000, 4, 5), (0x3004, 4, 3)]


def test_bench_runs_on_the_board_of_a_labgrid_environment_file(board, exported, tmp_path, pio_ready, capsys):
    """--lg-env: the board as a labgrid environment describes it (NetworkService, SSHDriver and
    its key, and the run prefix as an option)."""
    device, key, folder = board
    user, _, rest = device.partition("@")
    host, _, port = rest.partition(":")
    env = tmp_path / "lab.yaml"
    env.write_text(
        "targets:\n  main:\n    resources:\n      NetworkService:\n"
        f"        address: {host}\n        username: {user}\n        port: {port}\n"
        f"    drivers:\n      SSHDriver:\n        keyfile: {key}\n"
        f"options:\n  run_prefix: {PREFIX}\n"
    )
    code, doc = run_bench(
        "aarch64", "generated-int8", exported, tmp_path, "--lg-env", str(env), "--remote-dir", str(folder)
    )
    assert code == 0, capsys.readouterr()
    assert doc["target"]["device"]["name"] == "lab.yaml:main" and doc["target"]["device"]["run_prefix"] == PREFIX
    assert doc["parity_ok"]
    env.write_text("targets: [")
    code, _ = run_bench("aarch64", "generated-int8", exported, tmp_path / "broken", "--lg-env", str(env))
    err = capsys.readouterr().err
    assert code == 2 and f"error: {env}: not a labgrid environment" in err and "Traceback" not in err


def test_a_run_prefix_that_does_not_parse_is_named_before_connecting(board, exported, tmp_path, capsys):
    code, _ = run_bench("aarch64", "generated-int8", exported, tmp_path, *on_board(board, "--run-prefix", "qemu 'x"))
    err = capsys.readouterr().err
    assert code == 2 and 'error: --run-prefix "qemu \'x": No closing quotation' in err and no_result(tmp_path)

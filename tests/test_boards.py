"""Real boards over SSH, through labgrid, against a real SSH server (Debian's openssh-server) that
these tests start on 127.0.0.1 with throw-away keys. On that loopback "board" the ARM program runs
under qemu-aarch64, the board's run prefix; the program is deployed, run and its results brought
back exactly as on a Raspberry Pi. A labgrid coordinator and exporter on 127.0.0.1 serve the same
board as a place. Bad cases: unreachable, refused, wrong machine, killed: each an error naming
the board, and no result written."""

import contextlib
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench import boards, cli, layers, mca
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


def stop_groups(processes: list[subprocess.Popen], grace: float = 10.0) -> None:
    """End each process (each started in a session of its own) with whatever it started: SIGTERM
    to its process group, SIGKILL to the group if it still runs `grace` seconds later, then reaped;
    every one of them, whatever another does."""
    for p in processes:
        if p.poll() is None:  # not reaped yet: its pid, the group's id, is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture
def place(board, tmp_path):
    """A labgrid coordinator and an exporter of the loopback board's NetworkService, on 127.0.0.1,
    and a place matching it: (coordinator address, place name). Both run in a new folder of
    tmp_path, where the coordinator keeps its state (places.yaml, resources.yaml, in its working
    folder): each run starts with no place and leaves nothing in the checkout. Their output goes to
    logs there (a pipe nobody reads would stall them once full), and both are stopped, with what
    they started, whether the test passes or fails."""
    device, _, _ = board
    user, _, rest = device.partition("@")
    host, _, port = rest.partition(":")
    lab = tmp_path / "lab"
    lab.mkdir()
    config = lab / "exporter.yaml"
    config.write_text(f"loopback:\n  NetworkService:\n    address: {host}\n    username: {user}\n    port: {port}\n")
    address = f"127.0.0.1:{free_port()}"
    processes = []

    def start(tool: str, *args: str) -> tuple[subprocess.Popen, Path]:
        log = lab / f"{tool}.log"
        with log.open("wb") as out:
            p = subprocess.Popen(
                [str(TOOLS / tool), *args], stdout=out, stderr=subprocess.STDOUT, cwd=lab, start_new_session=True
            )
        processes.append(p)
        return p, log

    def client(*args: str) -> str:
        done = subprocess.run(
            [str(TOOLS / "labgrid-client"), "-x", address, "-p", "loopback", *args], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.fail(f"labgrid-client {' '.join(args)} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
        return done.stdout

    try:
        coordinator, log = start("labgrid-coordinator", "-l", address)
        wait_for_port(int(address.rsplit(":", 1)[1]), coordinator, f"labgrid-coordinator (its log: {log})")
        _, log = start("labgrid-exporter", "-c", address, "-n", "lab", "--hostname", "127.0.0.1", str(config))
        client("create")
        client("add-match", "lab/loopback/NetworkService")
        for _ in range(100):  # until the exporter has announced the resource
            if "Matching resource 'NetworkService'" in client("show"):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the exporter did not announce lab/loopback/NetworkService (its log: {log})")
        yield address, "loopback"
    finally:
        stop_groups(processes)


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


def test_the_fit_places_measured_code_and_the_deepest_stack_where_a_result_carries_them():
    for measured in ({}, {"code_bytes": None, "stack_bytes": None}):  # results before them, or not measured
        old = fake_result(1_000_000, 50_000)
        old["models"]["m"] |= measured
        placed = {p["part"]: (p["memory"], p["bytes"]) for p in boards.fit(old, BOARD)["placed"]}
        assert placed["stack (the harness's reservation)"] == ("ram", boards.STACK_BYTES)
        assert placed["m code"] == ("flash", 1000)  # from the symbols
    doc = fake_result(1_000_000, 50_000)
    doc["models"]["m"] |= {"code_bytes": 5000, "stack_bytes": 3000}
    doc["models"]["n"] = {**doc["models"]["m"], "stack_bytes": 7000, "model_bytes": 0}
    placed = {p["part"]: (p["memory"], p["bytes"]) for p in boards.fit(doc, BOARD)["placed"]}
    # code in the image (flash), the stack in RAM: the deepest forward's, as the models run one after another
    assert placed["m code"] == ("flash", 5000) and placed["n code"] == ("flash", 5000)
    assert placed["stack (n's forward, the deepest)"] == ("ram", 7000)
    assert not any(part.startswith("stack (the harness") for part in placed)


def test_each_estimate_streams_the_weights_and_says_whether_it_has_a_top():
    doc = fake_result(1_000_000, 50_000)
    placement = boards.fit(doc, BOARD)
    loop = {**doc["hot_loop"], "cycles_per_iteration": 32.0}
    by = {e["model"]: e for e in boards.estimates(doc, BOARD, placement, loop)}
    # 1 MB of int8 weights from flash at 1 GB/s = 1 ms, overlapped fully (low) to not at all (high).
    # roofline: 1 M multiply-adds at 2 G/s = 0.5 ms: a floor whatever its high says
    assert (by["roofline"]["low_ms"], by["roofline"]["high_ms"], by["roofline"]["bound"]) == pytest.approx(
        (1.0, 1.5, "floor")
    )
    # 2 M instructions at 1 GHz, 0.5-2 cycles each: 1-4 ms, then the weights
    counted = by["instructions x clock"]
    assert (counted["low_ms"], counted["high_ms"], counted["bound"]) == pytest.approx((1.0, 5.0, "range"))
    # 31,250 iterations x 32 cycles = 1 ms in the loop; 2 M - 31,250 x 40 = 750,000 other instructions
    mca = by["llvm-mca"]
    assert (mca["low_ms"], mca["high_ms"], mca["bound"]) == pytest.approx((1.375, 3.5, "range"))
    emulated = boards.estimates(fake_result(1_000_000, 50_000, counted=False), BOARD, placement, loop)
    assert [(e["model"], e["bound"], e["high_ms"]) for e in emulated][1] == ("llvm-mca", "floor", None)
    wide = {**loop, "instructions": 80}  # 31,250 x 80 = 2.5 M instructions in the loop: more than counted
    assert boards.estimates(doc, BOARD, placement, wide)[-1]["bound"] == "inconsistent"


@pytest.mark.parametrize(
    "low, high, verdict",
    [
        (1.0, boards.BUDGET_SHARE * 10, "meets"),  # the top exactly at the budget's share of the deadline
        (1.0, boards.BUDGET_SHARE * 10 + 0.01, "at risk"),
        (10.0, 20.0, "at risk"),  # the bottom at the deadline: not over it
        (10.01, 20.0, "misses"),
        (0.1, None, "at risk"),  # a floor alone never meets
        (10.5, None, "misses"),
    ],
)
def test_the_verdict_against_a_10_ms_deadline(low, high, verdict):
    assert boards.verdict(low, high, 10.0) == verdict


@pytest.mark.parametrize(
    "case, decided_by, range_ms, verdict",
    [
        ("counted", "llvm-mca", (1.375, 3.5), "meets"),
        ("no loop", "instr x clock", (1.0, 5.0), "meets"),
        ("loop beyond the count", "instr x clock", (1.0, 5.0), "meets"),
        ("emulated", "roofline floor", (1.0, None), "at risk"),  # roofline and the loop alone both floor at 1 ms
        ("short deadline", "llvm-mca", (1.375, 3.5), "misses"),
    ],
)
def test_the_most_direct_estimate_decides(case, decided_by, range_ms, verdict):
    doc = fake_result(1_000_000, 50_000, counted=case != "emulated")
    if case == "no loop":
        del doc["hot_loop"]
    if case == "loop beyond the count":
        doc["hot_loop"]["instructions"] = 80
    if case == "short deadline":
        doc["config"]["deadline_us"] = 1_000.0
    (a,) = boards.assess([doc], [BOARD])
    assert (a["decided_by"], a["verdict"], a["fits"]) == (decided_by, verdict, True)
    assert a["range_ms"] == pytest.approx(list(range_ms)) and a["deadline_ms"] == doc["config"]["deadline_us"] / 1e3


def test_the_table_gives_the_verdict_and_the_details_every_estimate_and_part():
    doc = fake_result(1_000_000, 50_000)
    out = boards.render(boards.assess([doc], [BOARD]), with_details=True)
    lines = out.splitlines()
    row = next(line.split() for line in lines if line.startswith("toy "))
    assert row == ["toy", "cortex-m7", "generated-int8", "1.38-3.50", "llvm-mca", "10.67", "meets", "yes"]
    for shown in (
        "roofline (floor): 1.00-1.50 ms",
        "instructions x clock (range): 1.00-5.00 ms",
        "llvm-mca (range): 1.38-3.50 ms",
        "m weights: 1,000,000 bytes in flash",
    ):
        assert shown in out
    assert all(len(line) <= boards.WIDTH for line in lines)


def assessment(engine: str, verdict: str, low: float, high: float | None, fits: bool = True) -> dict:
    """What best() reads of an assessment, on the toy board with a 10 ms deadline."""
    unplaced = [] if fits else [{"part": "m object", "role": "objects", "bytes": 1}]
    return {
        **{"board": "toy", "board_name": "Toy", "target": "cortex-m7", "engine": engine, "verdict": verdict},
        **{"range_ms": [low, high], "decided_by": "llvm-mca", "deadline_ms": 10.0, "fits": fits},
        "fit": {"fits": fits, "unplaced": unplaced},
    }


@pytest.mark.parametrize(
    "assessed, engine, nearest, why",
    [
        (
            [assessment("a", "meets", 1, 4), assessment("b", "meets", 1, 3), assessment("c", "at risk", 1, 8)],
            "b",
            None,
            None,
        ),
        (
            [assessment("a", "meets", 1, 2, fits=False), assessment("b", "at risk", 1, 8)],
            None,
            "a",
            "a meets the deadline but does not fit (no: RAM)",
        ),
        (
            [assessment("a", "at risk", 1, 8), assessment("b", "at risk", 1, 6)],
            None,
            "b",
            "b takes up to 6.00 ms, over 50% of 10.00 ms",
        ),
        (
            [assessment("a", "at risk", 0.5, None), assessment("b", "at risk", 0.2, None)],
            None,
            "b",
            "only a floor known (0.200 ms): run it on the board (bench run --device)",
        ),
        (
            [assessment("a", "misses", 12, 20), assessment("b", "misses", 11, 30)],
            None,
            "b",
            "every engine misses: the nearest, b, needs at least 11.0 of 10.00 ms",
        ),
    ],
)
def test_the_best_engine_per_board_meets_and_fits_or_the_nearest_says_why(assessed, engine, nearest, why):
    (found,) = boards.best(assessed)
    assert (found["engine"], found["nearest"], found["why"]) == (engine, nearest, why)
    chosen = next(a for a in assessed if a["engine"] == (engine or nearest))
    assert (found["verdict"], found["range_ms"], found["fits"]) == (
        chosen["verdict"],
        chosen["range_ms"],
        chosen["fits"],
    )


def test_best_lists_every_profile_in_order_even_without_a_result():
    profiles = [{**BOARD, "id": "other", "name": "Other"}, {**BOARD, "name": "Toy"}]
    found = boards.best([assessment("a", "meets", 1, 2)], profiles)
    assert [(b["board"], b["engine"], b["why"]) for b in found] == [
        ("other", None, "no result of a target it runs"),
        ("toy", "a", None),
    ]


@pytest.mark.parametrize("argv", [["boards"], ["boards", "--details"], ["boards", "--layers"]])
def test_bench_boards_fits_120_columns_on_the_committed_boards_and_results(argv, capsys):
    """reports/runs and reports/layers as committed, seen from bench/boards.json: every line, the
    tables whole and the prose wrapped; a verdict on every line of the boards' table."""
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= boards.WIDTH
    ids = {b["id"] for b in boards.load()}
    rows = [line for line in lines if line.split()[:1] and line.split()[0] in ids]
    assert rows
    if "--layers" not in argv:
        assert {line.split()[0] for line in rows} == ids  # every committed board has a result of its targets
        assert all(sum(f"  {v}  " in line for v in boards.VERDICTS) == 1 for line in rows)


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


ROWS = """
00004000 <rows8>:
    4000:	vldmia	r0, {s16-s23}
    4004:	vfma.f32	s0, s8, s16
    4008:	vfma.f32	s1, s8, s17
    400c:	vfma.f32	s2, s8, s18
    4010:	vfma.f32	s3, s8, s19
    4014:	vfma.f32	s4, s8, s20
    4018:	vfma.f32	s5, s8, s21
    401c:	vfma.f32	s6, s8, s22
    4020:	vfma.f32	s7, s8, s23
    4024:	bne.n	4000 <rows8>
"""


@pytest.mark.parametrize("integer, start", [(True, 0x1000), (False, 0x4000)], ids=["int8", "float"])
def test_an_int8_engine_is_estimated_by_its_integer_kernel(integer, start):
    # the float loop of a small layer kept in float32 does 8 multiply-adds a turn, smlad's 4
    assert mca.pick(mca.loops(LISTING + ROWS), integer)["start"] == start


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


# Per-sample figures from a counted layers result (bench boards --layers): arithmetic on a
# hand-written document.


def layers_doc(counts: dict, created: str = "2026-11-30T00:00:00+00:00", timing: str = "counted") -> dict:
    """A layers result of cortex-m7 (or, timed, of x86) with `counts`: {layer name: {engine:
    instructions per sample}}; names as the set's (gru_16_in1)."""
    counted = timing == "counted"
    rows = []
    for name, by_engine in counts.items():
        kind, units, inputs = name.split("_")
        figures = {
            engine: {
                "ns_per_sample": None if counted else 100.0,
                "ns_per_sample_min": None if counted else 90.0,
                "ns_per_sample_max": None if counted else 110.0,
                "real_time_factor": None if counted else 208.0,
                "instructions_per_sample": n,
                "vs_rtneural_best": None,
                "output_finite": True,
            }
            for engine, n in by_engine.items()
        }
        rows.append(
            {
                "name": name,
                "type": kind,
                "units": int(units),
                "inputs": int(inputs.removeprefix("in")),
                "parameters": 1,
                "rtneural_best": None,
                "engines": figures,
            }
        )
    target = "cortex-m7" if counted else "x86"
    doc = {
        "schema": layers.SCHEMA_ID,
        "id": f"{created}-{target}-layers",
        "created": created,
        "timing": timing,
        "target": {"name": target, "env": "cortex_m7", "board": "QEMU mps2-an500", "cpu": "cortex-m7", "run": "x"},
        "config": {
            **{"seconds": 0.02, "rounds": 1, "block_size": 512, "sample_rate": 48000, "blocks_per_slice": 2},
            **{"warmup_blocks": 1, "samples_per_engine": 1024, "counted_blocks": 2, "seed": 19, "layers": []},
        },
        "build": {"compiler": "arm-none-eabi-g++", "flags": [], "alignment": 8},
        "engines": sorted({e for by_engine in counts.values() for e in by_engine}),
        "unavailable": {},
        "counter": "QEMU -icount shift=0",
        "rtneural_commit": None,
        "project_commit": "0" * 40,
        "layers": rows,
    }
    layers.validate(doc)  # the document is one bench layers could have written
    return doc


M7 = {**BOARD, "id": "m7", "clock_hz": 480e6, "cpi": [1.0, 2.0]}  # at the top: 1 instruction/sample = 0.02%


@pytest.mark.parametrize(
    "instructions, shares",
    [
        (1000, (0.1, 0.2)),  # 1,000 x 48,000 x 1 / 480 MHz = 10%; at CPI 2, 20%
        (2500, (0.25, 0.5)),
        (5000, (0.5, 1.0)),
        (12_000, (1.2, 2.4)),  # more than the core
    ],
)
def test_the_cpu_share_is_instructions_per_sample_at_48_khz_over_the_cpi_range(instructions, shares):
    assert boards.cpu_share(instructions, M7) == pytest.approx(shares)


COUNTS = {
    "gru_8_in1": {"generated": 500, "stl": 3000},
    "gru_16_in1": {"generated": 1500, "stl": 4000},
    "gru_32_in1": {"generated": 4000},  # 80% at the top of the CPI range
    "gru_64_in1": {"generated": 12_000},
    "gru_64_in64": {"generated": 10},  # 64 inputs: not an audio model's layer, never the answer
    "lstm_8_in1": {"generated": 700},
    "lstm_16_in1": {"generated": 1000},
    "lstm_32_in1": {"generated": 2000, "generated-int8": 2501},  # 50.02%: just over
    "lstm_64_in1": {"generated": 2500},  # exactly half: it runs
}


@pytest.mark.parametrize(
    "engine, kind, cell",
    [
        ("generated", "gru", "16 (30.0%)"),
        ("generated", "lstm", "64+ (50.0%)"),  # the largest measured runs: a larger one may too
        ("stl", "gru", "none (8: 60.0%)"),
        ("generated-int8", "lstm", "none (32: 50.1%)"),  # rounded up: never shown as within half
        ("stl", "lstm", "-"),  # no LSTM measured on stl
    ],
)
def test_the_largest_gru_and_lstm_within_half_the_cpu(engine, kind, cell):
    assert boards.largest_cell(boards.largest(layers_doc(COUNTS), M7, engine, kind)) == cell


def write_doc(folder: Path, doc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{doc['created'][:19].replace(':', '')}-{doc['timing']}.json"
    path.write_text(json.dumps(doc))
    return path


def test_bench_boards_shows_each_m7_boards_share_of_a_layers_result(tmp_path, capsys):
    old = write_doc(tmp_path, layers_doc({"gru_8_in1": {"generated": 1.0}}, "2026-11-01T00:00:00+00:00"))
    new = write_doc(tmp_path, layers_doc({"gru_8_in1": {"generated": 10_000}, "lstm_8_in1": {"generated": 1000}}))
    write_doc(tmp_path, layers_doc({"gru_8_in1": {"generated": 5.0}}, "2026-12-01T00:00:00+00:00", "measured"))
    for argv in (["boards", str(new)], ["boards", "--layers", str(tmp_path)]):  # a file, or the newest counted
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        assert f"estimated for each board from {new.name}" in out and old.name not in out
        assert all(len(line) <= 120 for line in out.splitlines())
        lines = {tuple(line.split()[:2]): line.split()[2:] for line in out.splitlines() if line.split()}
        # daisy-seed and stm32h743 at 480 MHz, teensy41 at 600 MHz, CPI 0.7-1.5: 10,000 x 48,000 x 0.7 / 480 MHz
        assert lines[("gru_8_in1", "generated")] == ["10,000", "70.0-150.0", "56.0-120.0", "70.0-150.0"]
        # within half at CPI 1.5: lstm_8_in1 15% on the 480 MHz boards, gru_8_in1 over on every board
        assert lines[("daisy-seed", "generated")] == ["none", "(8:", "150.0%)", "8+", "(15.0%)"]
        assert lines[("teensy41", "generated")] == ["none", "(8:", "120.0%)", "8+", "(12.0%)"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("timed", "a layers result timed on x86: board shares need instructions counted on a Cortex-M7"),
        ("no counted one", "no counted layers result here (bench layers --target cortex-m7 writes one)"),
        ("among runs", "a layers result goes on its own (bench boards FILE), not among run results"),
        ("broken", "unreadable layers result"),
    ],
)
def test_bench_boards_refuses_a_layers_result_it_cannot_use(tmp_path, capsys, case, message):
    timed = write_doc(tmp_path / "timed", layers_doc({"gru_8_in1": {"generated": 5.0}}, timing="measured"))
    counted = write_doc(tmp_path / "counted", layers_doc({"gru_8_in1": {"generated": 5.0}}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    argv, where = {
        "timed": (["boards", str(timed)], timed),
        "no counted one": (["boards", "--layers", str(timed.parent)], timed.parent),
        "among runs": (["boards", str(counted), str(timed)], counted),
        "broken": (["boards", "--layers", str(broken)], broken),
    }[case]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {where}: ") and message in err and "Traceback" not in err

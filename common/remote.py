"""Boards on the network, reached through labgrid: a NetworkService resource and its SSHDriver, made
on the fly from `user@host[:port]` or an SSH config alias, read from a labgrid environment file, or
acquired as a place from a labgrid coordinator (so a team runs the same command against any board
of its labs).

What bench and the PlatformIO upload need of a board: its machine (`uname -m`), files put into a
folder there, and a command run there. A board may carry a run prefix (for example
`qemu-aarch64 -cpu cortex-a72`): the command the program runs under there, for a board that
emulates the target (the tests' loopback board), never for a real one.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import SuiteError

CONNECT_TIMEOUT = 8.0  # seconds labgrid keeps trying to reach a board before giving up
COORDINATOR = "127.0.0.1:20408"  # labgrid's own default coordinator address
REMOTE_ROOT = "rt-music-bench"  # on the board, under the login's home
# What `uname -m` says on a board each build runs on (an armv7 program also runs on a 64-bit kernel
# that has 32-bit support).
MACHINES = {"x86": ("x86_64",), "aarch64": ("aarch64", "arm64"), "armv7": ("armv7l", "armv8l", "aarch64")}
EMULATED = {"qemu-aarch64": "aarch64", "qemu-arm": "armv7l"}  # a run prefix's emulator: its machine
TIMED_OUT, SSH_FAILED = 124, 255  # exit codes of coreutils `timeout` and of ssh itself
# What an SSH config alias may look like: a host name's characters (ssh -G refuses others anyway,
# and a leading "-" would read as an option).
ALIAS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
DEVICE_FORMS = "user@host, user@host:port or an SSH config alias"


@dataclass
class Board:
    name: str  # how messages name it: user@host:port, or the place
    driver: object  # labgrid's SSHDriver, active
    run_prefix: tuple[str, ...] = ()
    release: list = field(default_factory=list)  # what close() undoes, last first
    machine_name: str = ""  # what machine() found, once checked
    root: str = REMOTE_ROOT  # the folder programs go under (relative: in the login's home)
    alias: str = ""  # the SSH config alias it was reached by, if it was

    @property
    def label(self) -> str:
        """The board in a file name: its alias, or its host (and port), or place, nothing else."""
        name = self.alias or self.name.split("@")[-1].removeprefix("place ").removesuffix(":22")
        return re.sub(r"[^A-Za-z0-9._-]+", "-", name)

    def machine(self) -> str:
        """The board's machine as `uname -m` says, or with a run prefix, the prefix's emulator found
        on the board and the machine it emulates (qemu-aarch64 -> aarch64)."""
        if self.run_prefix:
            emulator = self.run_prefix[0]
            if Path(emulator).name not in EMULATED:
                raise SuiteError(f"board {self.name}: run prefix {emulator} is no emulator this suite knows")
            self.check(f"command -v {shlex.quote(emulator)}", f"has no {emulator} (its run prefix)")
            return EMULATED[Path(emulator).name]
        return self.check("uname -m", "did not say its machine").strip()

    def check(self, command: str, what: str) -> str:
        code, out, err = self.run(command)
        if code != 0:
            raise SuiteError(f"board {self.name} {what} ({(err or out).strip()[-300:] or f'exit {code}'})")
        return out

    def run(self, command: str, timeout: float | None = None) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of a shell command on the board. With a timeout the board
        itself stops the command (coreutils `timeout`: exit code TIMED_OUT), so nothing is left
        running there; ssh exits with SSH_FAILED when the connection is lost."""
        from labgrid.driver import ExecutionError

        if timeout is not None:
            command = f"timeout -k 5 {int(timeout)} sh -c {shlex.quote(command)}"
        try:
            out, err, code = self.driver.run(
                command, timeout=None if timeout is None else timeout + 30, decodeerrors="replace"
            )
        except subprocess.TimeoutExpired:
            raise SuiteError(f"board {self.name}: no answer after {timeout:.0f} s from: {command}") from None
        except ExecutionError as exc:
            raise SuiteError(f"board {self.name}: lost the connection ({exc.msg})") from None
        return code, "\n".join(out) + ("\n" if out else ""), "\n".join(err)

    def put(self, files: list[Path], folder: str) -> str:
        """Copy files into `folder` under the board's root; returns the folder."""
        from labgrid.driver import ExecutionError

        remote = f"{self.root.removeprefix('~/')}/{folder}"  # relative: in the login's home, for ssh and scp alike
        self.check(f"mkdir -p {shlex.quote(remote)}", f"could not make the folder {remote}")
        for path in files:
            try:
                self.driver.put(str(path), f"{remote}/{path.name}")
            except ExecutionError as exc:
                raise SuiteError(f"board {self.name}: could not copy {path} to {remote} ({exc.msg})") from None
        return remote

    def close(self) -> None:
        while self.release:
            self.release.pop()()


@dataclass(frozen=True)
class Address:
    """Where a board is reached: as given (user@host[:port]), or as ssh resolves an alias."""

    user: str
    host: str
    port: int
    keyfile: str | None = None  # the alias's identity file (the first that exists), if any
    alias: str = ""

    @property
    def name(self) -> str:
        where = f"{self.user}@{self.host}:{self.port}"
        return f"{self.alias} ({where})" if self.alias else where


def default_coordinator() -> str:
    """The labgrid coordinator of a place: $LG_COORDINATOR (as labgrid's own tools read it), else labgrid's default."""
    return os.environ.get("LG_COORDINATOR", COORDINATOR)


def parse_device(device: str) -> tuple[str, str, int]:
    """(user, host, port) of `user@host[:port]`."""
    user, at, rest = device.rpartition("@")
    host, colon, port = rest.partition(":")
    if not at or not user or not host or (colon and not port.isdigit()):
        raise SuiteError(f"--device {device!r}: give the board as {DEVICE_FORMS}")
    return user, host, int(port) if colon else 22


def address(device: str, ssh_config: Path | None = None) -> Address:
    """`user@host[:port]` as given; anything else is an SSH config alias, read as ssh itself reads
    it (`ssh -G`: the config file, ~/.ssh/config unless `ssh_config` names another), so labgrid
    reaches the host `ssh <alias>` reaches, as that user, on that port, with that key. Only these
    four settings are carried: labgrid runs ssh with its own options (a ProxyJump is not kept)."""
    if "@" in device:
        return Address(*parse_device(device))
    if not ALIAS.fullmatch(device):
        raise SuiteError(f"--device {device!r}: give the board as {DEVICE_FORMS}")
    if ssh_config is not None and not Path(ssh_config).is_file():
        raise SuiteError("no such SSH config file (--ssh-config)", ssh_config)
    ssh = shutil.which("ssh")
    if ssh is None:
        raise SuiteError(f"--device {device}: an SSH config alias needs ssh (make setup installs openssh-client)")
    config = ["-F", str(ssh_config)] if ssh_config is not None else []
    done = subprocess.run([ssh, "-G", *config, device], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise SuiteError(f"--device {device}: ssh -G cannot resolve this alias ({why})")
    settings: dict[str, str] = {}
    identities = []
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key.lower() == "identityfile":  # listed once each, ssh's defaults when the config names none
            identities.append(value)
        else:
            settings.setdefault(key.lower(), value)
    keyfile = next((str(p) for p in (Path(v).expanduser() for v in identities) if p.is_file()), None)
    return Address(settings["user"], settings["hostname"], int(settings["port"]), keyfile, device)


def connect(
    device: str,
    keyfile: str | None = None,
    run_prefix: str = "",
    timeout: float = CONNECT_TIMEOUT,
    ssh_config: Path | None = None,
) -> Board:
    """A board from `user@host[:port]` or an SSH config alias (address()): a NetworkService and
    SSHDriver made on the fly. `keyfile` wins over the alias's identity file."""
    from labgrid import Target
    from labgrid.resource import NetworkService

    where = address(device, ssh_config)
    target = Target(where.name)
    NetworkService(target, name=None, address=where.host, username=where.user, port=where.port)
    board = _activate(target, where.name, keyfile or where.keyfile, run_prefix, timeout)
    board.alias = where.alias
    return board


def from_environment(path: Path, keyfile: str | None = None, run_prefix: str = "") -> Board:
    """The `main` target of a labgrid environment file (its NetworkService or RemotePlace, and its
    SSHDriver's settings); its `options: {run_prefix: ...}` gives a run prefix."""
    from labgrid import Environment
    from labgrid.exceptions import InvalidConfigError, NoConfigFoundError, NoSupplierFoundError
    from labgrid.remote.client import Error as CoordinatorError

    _quiet()
    try:
        env = Environment(config_file=str(path))
        target = env.get_target("main")
        options = env.config.data.get("options") or {}
    except CoordinatorError as exc:  # a RemotePlace: the coordinator unreachable, or the place not acquired
        raise SuiteError(f"its place: {exc} (acquire it first: labgrid-client -p NAME acquire)", path) from None
    except (InvalidConfigError, NoConfigFoundError, NoSupplierFoundError, OSError, ValueError, KeyError) as exc:
        why = str(exc).splitlines()[0][:300]
        raise SuiteError(f"not a labgrid environment with a target 'main' ({why})", path) from None
    if target is None:
        raise SuiteError("no target 'main' in this labgrid environment", path)
    prefix = run_prefix or str(options.get("run_prefix", "") if isinstance(options, dict) else "")
    return _activate(target, f"{path.name}:main", keyfile, prefix, existing=True)


def acquire(
    place: str, coordinator: str, keyfile: str | None = None, run_prefix: str = "", timeout: float = CONNECT_TIMEOUT
) -> Board:
    """The board of a labgrid place: acquired from the coordinator for this run, released after."""
    from labgrid import Target
    from labgrid.remote.client import Error as CoordinatorError
    from labgrid.resource.remote import RemotePlace

    prefix = split_prefix(run_prefix)
    client(coordinator, place, "acquire")
    undo = [lambda: client(coordinator, place, "release", check=False)]
    try:
        os.environ["LG_COORDINATOR"] = coordinator  # where labgrid's RemotePlace looks
        target = Target(place)
        RemotePlace(target, name=place)
        board = _activate(target, f"place {place}", keyfile, " ".join(prefix), timeout)
    except CoordinatorError as exc:
        undo[0]()
        raise SuiteError(f"place {place} at {coordinator}: {exc}") from None
    except BaseException:
        undo[0]()
        raise
    board.release.insert(0, undo[0])
    return board


def client(coordinator: str, place: str, *command: str, check: bool = True) -> str:
    """labgrid-client's answer to one command about a place."""
    tool = Path(sys.executable).with_name("labgrid-client")
    try:
        done = subprocess.run(
            [str(tool), "-x", coordinator, "-p", place, *command], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        if not check:
            return ""
        raise SuiteError(f"place {place}: no answer from the coordinator {coordinator} in 60 s") from None
    if check and done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise SuiteError(f"place {place} at {coordinator}: {' '.join(command)} failed ({why[-1] if why else ''})")
    return done.stdout


def _activate(
    target, name: str, keyfile: str | None, run_prefix: str, timeout: float = CONNECT_TIMEOUT, existing: bool = False
) -> Board:
    from labgrid.driver import SSHDriver

    _quiet()
    prefix = split_prefix(run_prefix)
    keyfile = str(Path(keyfile).expanduser().resolve()) if keyfile else None  # not relative to an env file
    try:
        if existing:
            driver = target.get_driver("SSHDriver", activate=False)
            if keyfile:
                driver.keyfile = keyfile
        else:
            driver = SSHDriver(target, name=None, keyfile=keyfile or "", connection_timeout=float(timeout))
        target.activate(driver)
    except Exception as exc:  # labgrid raises plain Exception on a connection timeout
        raise SuiteError(f"board {name}: cannot connect over SSH: {ssh_reason(exc)}") from None
    board = Board(name, driver, prefix)
    board.release.append(lambda: target.deactivate(driver))
    return board


def split_prefix(run_prefix: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(run_prefix))
    except ValueError as exc:
        raise SuiteError(f"--run-prefix {run_prefix!r}: {exc}") from None


def ssh_reason(exc: BaseException) -> str:
    """What ssh said, from a labgrid error and its causes (the last line ssh printed)."""
    while exc is not None:
        lines = [
            line.decode(errors="replace").strip() if isinstance(line, bytes) else str(line).strip()
            for line in (getattr(exc, "stdout", None) or [])
        ]
        lines = [line for line in lines if line]
        if lines:
            return lines[-1]
        if exc.__cause__ is None:
            return str(getattr(exc, "msg", exc))
        exc = exc.__cause__
    return "unknown error"


def _quiet() -> None:
    # labgrid logs each line ssh prints, on every retry, as a warning (which Python prints when no
    # handler is set up); the error raised here says what matters, once
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())

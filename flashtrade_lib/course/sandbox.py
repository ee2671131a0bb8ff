"""Run one submitted notebook in the student's world, not the instructor's.

A :class:`Sandbox` is made once per grading run: a virtualenv holding the release's
**student wheel** (its third-party packages — NumPy, torch, nbclient — are read from the
instructor's environment, but the instructor's ``flashtrade_lib`` and the course sources are
not), an IPython profile that installs the network guard, and a Jupyter kernelspec. Each
submission then runs in a fresh sandbox (:meth:`Sandbox.run`):

* **as root** (the machine allows ``unshare``): new mount, PID and network namespaces; a new
  root holding only the system folders, the Python installation, the grading virtualenv and the
  submission's own copy on a size-limited tmpfs — the repository, the release, the gradebook,
  the other submissions and the instructor's home do not exist there; the network has only the
  namespace's own loopback; the notebook runs as an unprivileged user (``nobody`` unless told
  otherwise), with no new privileges;
* **otherwise**: a fresh working folder, the same limits and a scrubbed environment, but the
  files the instructor can read stay readable and the network is cut only by
  :mod:`flashtrade_lib.netguard` plus an audit hook — :attr:`Isolation.describe` says which one a
  run got, and the gradebook records it.

Either way the limits are real (``setrlimit``: address space, CPU time, processes, file size;
per-cell and whole-notebook wall clocks; a cap on kept output), every process of the sandbox
is killed when it ends (its PID namespace, or its process group), and the outcome comes back
as JSON lines on a private pipe that the parent validates (:class:`Outcome`).
"""

from __future__ import annotations

import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

CHILD = Path(__file__).with_name("sandbox_child.py")
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
MAX_RESULT_BYTES = 2**22  # what the sandbox may send back: one short line per code cell

STARTUP = '''\
# Grading sandbox (written by flashtrade_lib.course.sandbox).
import os as _os

from flashtrade_lib import netguard as _netguard

_netguard.install()  # no connection leaves the machine
if {audit!r}:  # no network namespace here: refuse network and new processes below Python's socket module
    import sys as _sys

    def _flashtrade_guard(event, args, _blocked=("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
                                                "os.spawn", "os.fork", "os.forkpty", "pty.spawn")):
        if event in _blocked:
            raise PermissionError(f"{{event}} is not allowed while grading")
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg") and len(args) > 1:
            address = args[1]
            host = address[0] if isinstance(address, tuple) else address
            if isinstance(host, str) and not _netguard._is_local(host) and not host.startswith("/"):
                raise _netguard.NetworkBlockedError(f"network access to {{address!r}} blocked while grading")
        if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
                     "socket.gethostbyaddr") and args and not _netguard._is_local(args[0]):
            raise _netguard.NetworkBlockedError(f"DNS lookup of {{args[0]!r}} blocked while grading")

    _sys.addaudithook(_flashtrade_guard)
try:
    import torch as _torch

    if not _torch.cuda.is_available():
        _os.environ.setdefault("TRITON_INTERPRET", "1")  # Triton kernels run in the interpreter
except ImportError:
    pass
'''


@dataclass(frozen=True)
class Limits:
    """What one submission may use; every field is checked by :meth:`validate` before anything runs."""

    cell_timeout_s: int = 120
    submission_timeout_s: int = 1800
    memory_bytes: int = 6 * 2**30  # address space of each process (torch alone maps ~2 GiB)
    cpu_s: int | None = None  # CPU seconds of each process; None: the submission's wall-clock limit
    processes: int = 256  # processes and threads of the grading user
    file_bytes: int = 2**28  # largest file; also the size of each scratch tmpfs
    output_bytes: int = 2**20  # output kept per cell; more is dropped

    def validate(self) -> None:
        for name in ("cell_timeout_s", "submission_timeout_s", "memory_bytes", "processes", "file_bytes",
                     "output_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if self.cpu_s is not None and (not isinstance(self.cpu_s, int) or self.cpu_s <= 0):
            raise ValueError(f"cpu_s must be a positive whole number of seconds, got {self.cpu_s!r}")
        if self.memory_bytes < 2**30:
            raise ValueError(f"the memory limit must be at least 1 GiB (--memory-gb 1; a kernel importing torch "
                             f"needs more), got {self.memory_bytes / 2**30:g} GiB")

    def as_dict(self) -> dict[str, int]:
        return {"memory_bytes": self.memory_bytes, "cpu_s": self.cpu_s or self.submission_timeout_s,
                "processes": self.processes, "file_bytes": self.file_bytes}


@dataclass(frozen=True)
class Isolation:
    """What this machine let the sandbox do (recorded with the grades)."""

    namespaces: bool  # mount + PID + network namespaces and a new root
    user: str  # who the notebook runs as

    def describe(self) -> str:
        if self.namespaces:
            return (f"network: cut (a network namespace with only its own loopback); files: a new root without "
                    f"the course, the gradebook or other submissions; processes: a PID namespace; user: {self.user}")
        return (f"network: guard only (flashtrade_lib.netguard and an audit hook; no network namespace here); "
                f"files: whatever {self.user} can read; processes: one process group; user: {self.user}")


@dataclass
class CellOutcome:
    index: int
    status: str  # ok | error | timeout (interrupted) | stuck (ignored two interrupts) | died (kernel died)
    seconds: float
    ename: str = ""
    evalue: str = ""


@dataclass
class Outcome:
    """What came back from one sandbox, validated."""

    cells: dict[int, CellOutcome] = field(default_factory=dict)
    finished: bool = False  # the notebook ran to its end (or to a dead kernel) within its limits
    problem: str = ""  # why not, in words, when not finished
    seconds: float = 0.0


_STATUSES = {"ok", "error", "timeout", "stuck", "died"}


def parse_events(lines: list[bytes], n_cells: int) -> Outcome:
    """Validate the sandbox's report: known fields, known statuses, cell numbers in range — anything else is refused."""
    outcome = Outcome()
    for raw in lines:
        try:
            event = json.loads(raw)
        except ValueError:
            outcome.problem = "the sandbox sent something that is not a result"
            return outcome
        if not isinstance(event, dict):
            outcome.problem = "the sandbox sent something that is not a result"
            return outcome
        if event.get("done") is True:
            outcome.finished = True
        elif isinstance(event.get("failed"), str):
            outcome.problem = f"the notebook could not be run: {event['failed'][:500]}"
        elif (isinstance(event.get("cell"), int) and 0 <= event["cell"] < n_cells and event.get("status") in _STATUSES
              and isinstance(event.get("seconds"), (int, float))):
            outcome.cells[event["cell"]] = CellOutcome(
                event["cell"], event["status"], float(event["seconds"]),
                str(event.get("ename", ""))[:200], str(event.get("evalue", ""))[:4000])
        else:
            outcome.problem = "the sandbox sent a malformed result"
            return outcome
    return outcome


def _namespaces_work() -> bool:
    """Whether ``unshare`` can give this process new mount, PID and network namespaces (as root here)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "true"],
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def grading_user(name: str | int | None = None) -> tuple[int, str]:
    """The uid the notebooks run as: ``name`` (a user or a uid), else ``nobody`` when root, else oneself."""
    if name is None:
        if os.geteuid() != 0:
            return os.geteuid(), f"{pwd.getpwuid(os.geteuid()).pw_name} (not root: cannot switch users)"
        name = "nobody"
    if isinstance(name, int) or str(name).isdigit():
        uid = int(name)
        return uid, f"uid {uid}"
    try:
        return pwd.getpwnam(str(name)).pw_uid, f"{name} (uid {pwd.getpwnam(str(name)).pw_uid})"
    except KeyError:
        raise ValueError(f"no user {name!r} on this machine to grade as: pass an existing user or a uid") from None


def _site_packages() -> list[str]:
    """The instructor environment's package folders (third-party packages only are used from them)."""
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return sorted(p for p in paths if os.path.isdir(p))


class Sandbox:
    """One grading run's sandbox; use as a context manager, then :meth:`run` each submission."""

    def __init__(self, wheel: Path, limits: Limits, *, user: str | int | None = None,
                 namespaces: bool | None = None) -> None:
        limits.validate()
        self.wheel, self.limits = Path(wheel), limits
        self.uid, user_name = grading_user(user)
        use_ns = _namespaces_work() if namespaces is None else namespaces
        if self.uid != os.geteuid() and os.geteuid() != 0:
            raise ValueError("only root can grade as another user")
        self.isolation = Isolation(use_ns, user_name)
        self.root: Path | None = None

    def __enter__(self) -> Sandbox:
        self.root = Path(tempfile.mkdtemp(prefix="flashtrade-sandbox-"))
        self.root.chmod(0o755)
        self._venv = self.root / "venv"
        self._make_venv()
        startup = self.root / "startup.py"  # run by the kernel itself (IPython skips a profile it cannot write)
        startup.write_text(STARTUP.format(audit=not self.isolation.namespaces))
        spec = self.root / "jupyter" / "kernels" / "python3"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(self._venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}",
                     f"--IPKernelApp.exec_files={startup}"],
            "display_name": "Python 3 (grading)", "language": "python"}))
        shutil.copy(CHILD, self.root / "child.py")
        _readable_by_all(self.root)
        (self.root / "jobs").mkdir(mode=0o700)
        if not self.isolation.namespaces and self.uid != os.geteuid():
            self._check_reachable()
        return self

    def _check_reachable(self) -> None:
        """Without a new root, the grading user reads the real file system: say so now if it cannot reach Python."""
        for path in (os.path.realpath(self._venv / "bin" / "python"), *_site_packages()):
            blocked = [str(p) for p in (Path(path), *Path(path).parents) if p.exists() and not p.stat().st_mode & 0o001]
            if blocked:
                self.__exit__()
                raise ValueError(f"the grading user ({self.isolation.user}) cannot reach {path}: {blocked[-1]} is "
                                 "closed to other users. Install Python and the packages where other users can read "
                                 "them, pass --grading-user, or grade as root where `unshare` works")

    def __exit__(self, *exc: object) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def _make_venv(self) -> None:
        """A virtualenv with the student wheel unpacked into it; the instructor's packages are a plain path entry
        (their ``.pth`` files — an editable flashtrade_lib among them — are not processed)."""
        subprocess.run([sys._base_executable if hasattr(sys, "_base_executable") else sys.executable,  # noqa: SLF001
                        "-m", "venv", "--without-pip", str(self._venv)], check=True, capture_output=True)
        site = Path(sysconfig.get_path("purelib", vars={"base": str(self._venv), "platbase": str(self._venv)}))
        with zipfile.ZipFile(self.wheel) as wheel:
            wheel.extractall(site)
        if not (site / "flashtrade_lib" / "exercises").is_dir():
            raise ValueError(f"{self.wheel} is not a flashtrade_lib wheel (no flashtrade_lib/exercises in it)")
        (site / "zz_instructor_packages.pth").write_text("\n".join(_site_packages()) + "\n")

    def _hidden_inside(self) -> list[str]:
        """An installed (not editable) flashtrade_lib in the instructor's packages: the student wheel replaces it."""
        return [str(p) for site in _site_packages() for p in Path(site).glob("flashtrade_lib*")]

    def _env(self, home: str) -> dict[str, str]:
        return {"PATH": f"{self._venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
                "IPYTHONDIR": f"{home}/.ipython", "JUPYTER_PATH": str(self.root / "jupyter"),
                "JUPYTER_CONFIG_DIR": f"{home}/.jupyter", "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
                "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime" if self.isolation.namespaces else f"{home}/.runtime",
                "MPLCONFIGDIR": f"{home}/.matplotlib", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                "FLASHTRADE_ALLOW_NETWORK": "0", "PYTHONDONTWRITEBYTECODE": "1",
                # what nbgrader's autograde sets: a locked check cell raises on a wrong answer
                # (in a learner's notebook it only reports), so the cell scores 0
                "NBGRADER_EXECUTION": "autograde"}

    def run(self, nb: nbformat.NotebookNode, name: str) -> Outcome:
        """Execute ``nb`` (already prepared by the grader) in a fresh sandbox; never raises for what the notebook does."""
        assert self.root is not None, "use Sandbox as a context manager"
        job = Path(tempfile.mkdtemp(dir=self.root / "jobs"))
        try:
            return self._run(nb, name, job)
        finally:
            shutil.rmtree(job, ignore_errors=True)

    def _run(self, nb: nbformat.NotebookNode, name: str, job: Path) -> Outcome:
        ns = self.isolation.namespaces
        home = "/home/student" if ns else str(job / "home")
        if not ns:
            Path(home).mkdir()
            job.chmod(0o711)
            if os.geteuid() == 0:
                os.chown(home, self.uid, self.uid)
        notebook = job / name if ns else Path(home) / name
        nbformat.write(nb, notebook)
        if not ns and os.geteuid() == 0:
            os.chown(notebook, self.uid, self.uid)
        read_end, write_end = os.pipe()
        cfg = {"namespaces": ns, "new_root": str(job / "root"), "uid": self.uid, "home": home,
               "notebook": str(notebook), "result_fd": write_end, "limits": self.limits.as_dict(),
               "cell_timeout_s": self.limits.cell_timeout_s, "output_bytes": self.limits.output_bytes,
               "python": str(self._venv / "bin" / "python"), "env": self._env(home),
               "reveal": [*SYSTEM_FOLDERS, sys.base_prefix, *_site_packages(), str(self._venv),
                          str(self.root / "startup.py"), str(self.root / "jupyter"), str(self.root / "child.py")],
               "hide": self._hidden_inside()}
        (job / "config.json").write_text(json.dumps(cfg))
        (job / "config.json").chmod(0o600)
        launch = [sys.executable, "-I", str(self.root / "child.py"), "launch", str(job / "config.json")]
        if ns:
            launch = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--", *launch]
        log = (job / "log").open("wb")
        start = time.monotonic()
        try:
            proc = subprocess.Popen(launch, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(write_end,),
                                    start_new_session=True, cwd="/")
        finally:
            os.close(write_end)
            log.close()
        lines, problem = self._collect(proc, read_end, start)
        os.close(read_end)
        outcome = parse_events(lines, len(nb.cells))
        outcome.seconds = time.monotonic() - start
        if problem:
            outcome.finished, outcome.problem = False, problem
        elif not outcome.finished and not outcome.problem:
            tail = (job / "log").read_bytes()[-600:].decode(errors="replace").strip()
            outcome.problem = f"the grading process ended early (exit {proc.returncode}){': ' + tail if tail else ''}"
        return outcome

    def _collect(self, proc: subprocess.Popen, fd: int, start: float) -> tuple[list[bytes], str]:
        """Read the report until the sandbox closes it or runs out of time/room; then kill everything it started."""
        deadline, data, problem = start + self.limits.submission_timeout_s, b"", ""
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    problem = f"the notebook ran past its {self.limits.submission_timeout_s} s limit"
                    break
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > MAX_RESULT_BYTES:
                    problem = "the sandbox sent more than a report's worth of data"
                    break
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # unshare dies -> the PID namespace's init dies -> all of it
            except ProcessLookupError:
                pass
            proc.wait()
            if not self.isolation.namespaces:
                _kill_user_processes(self.uid)
        return data.splitlines(), problem


def _readable_by_all(top: Path) -> None:
    """Let the grading user read what the sandbox holds (whatever the instructor's umask); symlinks are
    skipped — chmod would follow them out of the sandbox (the venv's python points at the real interpreter)."""
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.path.isdir(path) or os.access(path, os.X_OK) else 0o644)


def _kill_user_processes(uid: int) -> None:
    """Without a PID namespace, a detached process escapes the process group: end every process of the grading
    user (only when that user is a dedicated one, i.e. not oneself)."""
    if uid == os.geteuid():
        return
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass

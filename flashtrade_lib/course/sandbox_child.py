"""The two steps inside a grading sandbox: ``launch`` (as root: namespaces, new root, limits, drop to the
grading user) then ``run`` (as that user: execute one notebook, report each code cell's outcome).

This file runs *by path*, copied into the sandbox, with the standard library alone in ``launch``
and the grading virtualenv (student wheel + nbclient) in ``run``: nothing of the instructor's
``flashtrade_lib`` is imported here, so nothing of it enters the student's world.
:mod:`flashtrade_lib.course.sandbox` writes the configuration this file reads and reads
back what ``run`` reports — one JSON object per line on a pipe the student's kernel cannot
reach (``run`` is not dumpable, and the pipe is not inherited by the kernel).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import socket
import struct
import sys
import time

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 32, 4096, 16384
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
SIOCSIFFLAGS, IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x8914, 0x1, 0x8, 0x40
DEVICES = ("null", "zero", "full", "random", "urandom")
_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source} on {target}")


def _tmpfs(target: str, size: int, mode: int, uid: int = 0) -> None:
    os.makedirs(target, exist_ok=True)
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode:o},uid={uid},gid={uid}")


def _bind(source: str, target: str, *, read_only: bool = True, devices: bool = False) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | (0 if devices else MS_NODEV))


def _new_root(cfg: dict) -> None:
    """A fresh root holding only what grading needs, read-only, plus the student's own scratch space."""
    root, uid, size = cfg["new_root"], cfg["uid"], cfg["limits"]["file_bytes"]
    _mount(None, "/", None, MS_REC | (1 << 18))  # MS_PRIVATE: nothing here propagates to the host
    _tmpfs(root, 2**24, 0o755)
    _tmpfs(root + "/dev", 2**20, 0o755)
    for name in DEVICES:
        _bind(f"/dev/{name}", f"{root}/dev/{name}", read_only=False, devices=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    for scratch in ("/dev/shm", "/tmp", cfg["home"]):
        _tmpfs(root + scratch, size, 0o700 if scratch == cfg["home"] else 0o1777, uid if scratch == cfg["home"] else 0)
    for path in cfg["reveal"]:  # after the scratch space: the sandbox's own files may live under /tmp
        if os.path.islink(path) and os.path.dirname(path) == "/":  # /bin -> usr/bin on merged-/usr systems
            os.symlink(os.readlink(path), root + path)
        elif os.path.exists(path):
            _bind(path, root + path)
    for path in cfg["hide"]:  # inside a revealed folder, e.g. an installed flashtrade_lib with references
        if os.path.isdir(root + path):
            _mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4096,mode=755")
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV)
    notebook = os.path.join(cfg["home"], os.path.basename(cfg["notebook"]))
    with open(cfg["notebook"], "rb") as src, open(root + notebook, "wb") as dst:
        dst.write(src.read())
    os.chown(root + notebook, uid, uid)
    _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(root)
    cfg["notebook"] = notebook


def _loopback_up() -> None:
    """The namespace's own loopback (kernel <-> runner traffic); it reaches nothing outside."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        import fcntl

        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING, b""))


def _limit(limits: dict) -> None:
    for name, value in (("RLIMIT_AS", limits["memory_bytes"]), ("RLIMIT_CPU", limits["cpu_s"]),
                        ("RLIMIT_NPROC", limits["processes"]), ("RLIMIT_FSIZE", limits["file_bytes"]),
                        ("RLIMIT_CORE", 0), ("RLIMIT_NOFILE", 1024)):
        resource.setrlimit(getattr(resource, name), (value, value))


def launch(cfg: dict) -> None:
    """As root (or the instructor): isolate, limit, drop privileges, then exec ``run`` with the grading Python."""
    if cfg["namespaces"]:
        _loopback_up()
        _new_root(cfg)
    _limit(cfg["limits"])
    if os.geteuid() == 0 and cfg["uid"] != 0:
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
        # changing uid clears the parent-death signal unshare --kill-child set: set it again, so that killing
        # unshare still ends this process (the PID namespace's init) and with it every process of the sandbox
        _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PDEATHSIG)")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    os.chdir(cfg["home"])
    os.umask(0o077)
    run_cfg = {key: cfg[key] for key in ("notebook", "result_fd", "cell_timeout_s", "output_bytes", "home")}
    os.execve(cfg["python"], [cfg["python"], os.path.abspath(__file__), "run", json.dumps(run_cfg)], cfg["env"])


def run(cfg: dict) -> None:
    """As the student: execute the notebook with nbclient; one JSON line per code cell on the result pipe."""
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the student's kernel (same uid) cannot ptrace us or read our fds
    fd = cfg["result_fd"]
    os.set_inheritable(fd, False)
    out = os.fdopen(fd, "w", buffering=1)

    def report(**event: object) -> None:
        out.write(json.dumps(event) + "\n")

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from flashtrade_lib.kernel_messages import messages_polled_in_slices

    messages_polled_in_slices()  # a missed message would grade an idle kernel's cell 'timed out'

    limit = cfg["output_bytes"]

    class Client(NotebookClient):
        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):  # noqa: ANN001
            if cell.cell_type != "code":
                return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            self.timeouts, self.kept, start = 0, 0, time.monotonic()
            try:
                cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            except CellTimeoutError:
                report(cell=cell_index, status="stuck", seconds=time.monotonic() - start)
                raise
            except DeadKernelError:
                report(cell=cell_index, status="died", seconds=time.monotonic() - start)
                raise
            error = next((o for o in cell.outputs if o.get("output_type") == "error"), None)
            status = "timeout" if self.timeouts else "error" if error else "ok"
            report(cell=cell_index, status=status, seconds=time.monotonic() - start,
                   ename=error.get("ename", "") if error else "", evalue=str(error.get("evalue", ""))[:4000] if error else "")
            return cell

        async def _async_handle_timeout(self, timeout, cell=None):  # noqa: ANN001
            self.timeouts += 1
            if self.timeouts > 2:  # two interrupts did not stop it: no later cell can run in this kernel
                raise CellTimeoutError.error_from_timeout_and_cell("the cell ignored the interrupt", timeout, cell)
            return await super()._async_handle_timeout(timeout, cell)

        def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001
            self.kept += len(json.dumps(msg.get("content", {})))
            if self.kept > limit:  # keep memory bounded: a flood of prints is dropped, not stored
                return None
            return super().output(outs, msg, display_id, cell_index)

    try:
        nb = nbformat.read(cfg["notebook"], as_version=4)
        client = Client(nb, timeout=cfg["cell_timeout_s"], interrupt_on_timeout=True, allow_errors=True,
                        kernel_name="python3", startup_timeout=120, record_timing=False,
                        extra_arguments=["--HistoryManager.hist_file=:memory:"],
                        resources={"metadata": {"path": cfg["home"]}})
        client.execute()
    except (CellTimeoutError, DeadKernelError):
        pass  # reported above, with the cell
    except Exception as exc:  # the kernel would not start, or nbclient failed: not the student's answer
        report(failed=f"{type(exc).__name__}: {str(exc)[:2000]}")
        return
    report(done=True)


if __name__ == "__main__":
    step, config = sys.argv[1], sys.argv[2]
    if not config.startswith("{"):  # launch: a root-only file (it holds the grading environment)
        with open(config) as f:
            config = f.read()
    {"launch": launch, "run": run}[step](json.loads(config))

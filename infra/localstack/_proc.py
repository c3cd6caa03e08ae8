"""Process plumbing: detached starts, pid files, liveness, stopping, one-shot runs, service user.

Everything here is POSIX/Linux (``/proc``), which is what the build machines and developers run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from omium.infra.localstack._errors import PrerequisiteError, StackError

log = structlog.get_logger(__name__)

_USER_LOCK = threading.Lock()
RUN_HEADER = "=== omium up:"


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account a server runs as (PostgreSQL and OpenSearch refuse root).

    Attributes:
        user: Login name.
        uid: Numeric user id.
        gid: Numeric id of the user's primary group.
    """

    user: str
    uid: int
    gid: int


def service_account(name: str) -> RunAs | None:
    """Return the account to run root-refusing servers as, creating it if missing.

    When the caller is not root there is nothing to switch to: servers run as the caller, so this
    returns None.

    Args:
        name: Login name of the service user (``settings.stack.service_user``).

    Returns:
        The account, or None to run as the current user.
    """
    if os.geteuid() != 0:
        return None
    with _USER_LOCK:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            log.info("creating service user", user=name)
            run_once(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ],
                what=f"useradd {name}",
            )
            entry = pwd.getpwnam(name)
    return RunAs(user=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _can_traverse(st: os.stat_result, account: RunAs) -> bool:
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == account.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def ensure_traversable(path: Path, account: RunAs | None) -> None:
    """Let ``account`` walk down to ``path`` (search permission only, never read/list).

    The repository may sit under a private folder such as ``/root``; the service user then cannot
    reach its data folder. We grant only the execute bit on the folders that lack it (an ACL entry
    when ``setfacl`` exists, else ``o+x``) instead of loosening the whole tree.

    Args:
        path: Folder the account must reach.
        account: The service account, or None when running unprivileged (nothing to do).
    """
    if account is None:
        return
    for folder in reversed([path, *path.parents]):
        st = folder.stat()
        if _can_traverse(st, account):
            continue
        if shutil.which("setfacl"):
            run_once(["setfacl", "-m", f"u:{account.user}:x", str(folder)], what="setfacl")
        else:
            os.chmod(folder, st.st_mode | stat.S_IXOTH)
        log.warning("granted traverse permission", folder=str(folder), user=account.user)


def chown_tree(path: Path, account: RunAs | None) -> None:
    """Give ``account`` ownership of ``path`` and everything below it (no-op when None)."""
    if account is None:
        return
    os.lchown(path, account.uid, account.gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), account.uid, account.gid)


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file``, or None if there is no (valid) pid file."""
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _reap(pid: int) -> None:
    # A server we started from this very process (e.g. in a test) stays a zombie until reaped,
    # and kill(pid, 0) succeeds on zombies; reaping here keeps liveness checks truthful.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int | None, marker: str | None = None) -> bool:
    """Whether ``pid`` is a live (non-zombie) process whose command line contains ``marker``.

    The marker guards against pid reuse: after a reboot the pid in a stale pid file may belong to
    an unrelated process, which must be neither reported as ours nor signalled.
    """
    if pid is None or pid <= 0:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
        if status.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    return marker is None or marker in cmdline.decode(errors="replace")


def spawn(
    cmd: Sequence[str],
    *,
    log_path: Path,
    pid_file: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    account: RunAs | None = None,
) -> int:
    """Start ``cmd`` detached: own session, stdin closed, stdout+stderr appended to ``log_path``.

    The user switch happens in the forked child (``Popen(user=...)``) rather than through
    ``runuser``: runuser stays as the parent, so the pid file would name runuser, and it answers a
    SIGTERM by killing the server with SIGKILL two seconds later, which is no clean shutdown.

    Returns:
        The pid of the server process, also written to ``pid_file``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env.update(env or {})
    if account is not None:
        full_env["HOME"] = str(cwd)
        full_env["USER"] = full_env["LOGNAME"] = account.user
    with open(log_path, "ab") as log_file:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log_file.write(f"\n{RUN_HEADER} {' '.join(cmd)} at {stamp} ===\n".encode())
        log_file.flush()
        try:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=full_env,
                start_new_session=True,
                close_fds=True,
                user=account.uid if account else None,
                group=account.gid if account else None,
                # Drop root's supplementary groups along with its uid.
                extra_groups=[] if account else None,
            )
        except FileNotFoundError as exc:
            raise PrerequisiteError(f"cannot run {cmd[0]}: not installed ({exc})") from exc
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.replace(pid_file)
    return proc.pid


def stop(pid: int, marker: str, sig: int, timeout_s: float) -> str:
    """Ask a server to stop with ``sig``; SIGKILL its process group after ``timeout_s``.

    Returns:
        ``"stopped"`` (exited after the signal), ``"killed"`` (needed SIGKILL) or
        ``"not running"``.
    """
    if not is_alive(pid, marker):
        return "not running"
    # Only the main process gets the polite signal: PostgreSQL backends, for example, treat
    # SIGINT as "cancel query", and the postmaster shuts them down itself.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if _wait_gone(pid, timeout_s):
        return "stopped"
    log.warning("process ignored signal; killing", pid=pid, signal=signal.Signals(sig).name)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 10.0)
    return "killed"


def _wait_gone(pid: int, timeout_s: float) -> bool:
    # No marker check here: the pid was verified before signalling, and an exiting process
    # has an empty command line before it is gone, which would look like "not ours" too early.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.1)
    return not is_alive(pid)


def run_once(
    cmd: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    account: RunAs | None = None,
    timeout_s: float = 900.0,
) -> str:
    """Run a one-shot command to completion (``runuser -u <user> --`` when ``account`` is set).

    Raises:
        PrerequisiteError: The program does not exist.
        StackError: It failed or timed out; the message carries the end of its output.

    Returns:
        The command's standard output.
    """
    argv = list(cmd)
    if account is not None:
        argv = ["runuser", "-u", account.user, "--", *argv]
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise PrerequisiteError(
            f"{what}: {argv[0]} is not installed (run `make bootstrap`)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what} timed out after {timeout_s:.0f}s: {' '.join(argv)}") from exc
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
        raise StackError(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{output}")
    return result.stdout


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    last = data.decode(errors="replace").splitlines()[-lines:]
    # Only the latest run matters; `spawn` starts each run with a "=== omium up" header.
    starts = [i for i, line in enumerate(last) if line.startswith(RUN_HEADER)]
    return "\n".join(last[starts[-1] :] if starts else last)


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False

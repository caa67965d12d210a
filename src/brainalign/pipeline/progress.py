"""What a run shows while it works: tasks done per stage, the tasks running, time and time left.

On a terminal a live table (rich) redraws a few times a second; elsewhere (CI logs, files) plain
lines are printed when a stage finishes, when a task took long, and at least every
``heartbeat`` seconds, so no minute passes in silence.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class RunProgress:
    """Progress of one run of tasks.

    Parameters
    ----------
    workers : int
        Tasks that run at once (to estimate the time left).
    live : bool, optional
        A live table (default: when ``stream`` is a terminal).
    stream : file, optional
        Where to write (default ``sys.stdout``).
    heartbeat : float
        Longest silence in plain mode, in seconds.
    slow : float
        Plain mode prints each task that took at least this many seconds.
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        live: bool | None = None,
        stream=None,
        heartbeat: float = 30.0,
        slow: float = 10.0,
    ):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.workers = max(1, workers)
        self.heartbeat, self.slow = heartbeat, slow
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.seconds: dict[str, list[float]] = {}
        self.running: dict[str, tuple[str, float]] = {}  # label -> (stage, start time)
        self.span: dict[str, list[float]] = {}  # stage -> [first start, last end]
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._last_print = self._t0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = None

    # ------------------------------------------------------------------------------- events
    def start(self, stages: Sequence[str], cached: Sequence[str] = ()) -> None:
        """All tasks' stages (one entry per task) and those already cached."""
        with self._lock:
            for st in stages:
                self.total[st] = self.total.get(st, 0) + 1
            for st in cached:
                self.done[st] = self.done.get(st, 0) + 1
        n_todo = sum(self.total.values()) - sum(self.done.values())
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                get_renderable=self._table,
                console=Console(file=self.stream),
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        else:
            self._print(
                f"{sum(self.total.values())} task(s): {sum(self.done.values())} cached, "
                f"{n_todo} to run on {self.workers} worker(s)"
            )
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()

    def submitted(self, stage: str, label: str) -> None:
        now = time.perf_counter()
        with self._lock:
            self.running[label] = (stage, now)
            self.span.setdefault(stage, [now, now])

    def finished(self, stage: str, label: str, seconds: float) -> None:
        now = time.perf_counter()
        with self._lock:
            self.running.pop(label, None)
            self.done[stage] = self.done.get(stage, 0) + 1
            self.seconds.setdefault(stage, []).append(seconds)
            self.span.setdefault(stage, [now, now])[1] = now
            stage_done = self.done[stage] == self.total.get(stage, 0)
        if self.live:
            return
        if seconds >= self.slow:
            self._print(f"  {label} took {_clock(seconds)}")
        if stage_done:
            self._print(f"  {stage}: {self.total[stage]} task(s) done ({self._summary()})")

    def close(self) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._thread is not None:
            self._thread.join(timeout=1)

    def timing(self) -> list[dict]:
        """Per stage: tasks computed, task-seconds (summed), wall seconds (first start → last end)."""
        return [
            {
                "stage": st,
                "tasks": len(secs),
                "task_seconds": float(sum(secs)),
                "wall_seconds": float(self.span[st][1] - self.span[st][0]),
            }
            for st, secs in self.seconds.items()
        ]

    # ------------------------------------------------------------------------------ display
    def _eta(self) -> float | None:
        """Seconds left: remaining tasks × their stage's mean duration, over the workers."""
        with self._lock:
            all_secs = [x for v in self.seconds.values() for x in v]
            if not all_secs:
                return None
            overall = sum(all_secs) / len(all_secs)
            mean = {st: sum(v) / len(v) for st, v in self.seconds.items()}
            remaining = {st: n - self.done.get(st, 0) for st, n in self.total.items()}
            unknown = sum(r for st, r in remaining.items() if st not in mean)
            if unknown > 0.5 * sum(remaining.values()):
                return None  # most of what is left has never run: any estimate would be a guess
            left = 0.0
            for st, r in remaining.items():
                left += r * mean.get(st, overall)
            # a running task has already done part of its share
            now = time.perf_counter()
            for stage, t0 in self.running.values():
                left -= min(now - t0, mean.get(stage, overall))
            return max(0.0, left) / self.workers

    def _summary(self) -> str:
        total, done = sum(self.total.values()), sum(self.done.values())
        eta = self._eta()
        if done >= total:
            left = ""
        elif eta is None:
            left = ", time left: estimating (most remaining stages have not run yet)"
        else:
            left = f", about {_clock(eta)} left"
        return f"{done}/{total} tasks, {_clock(time.perf_counter() - self._t0)} elapsed{left}"

    def _running_now(self, n: int = 4) -> list[str]:
        with self._lock:
            # submitted tasks beyond the workers wait in the queue: the oldest are the running
            items = sorted(self.running.items(), key=lambda kv: kv[1][1])[: self.workers]
        now = time.perf_counter()
        return [f"{label} ({_clock(now - t)})" for label, (_, t) in items[:n]]

    def _table(self):
        from rich.table import Table

        table = Table(title=f"brainalign · {self._summary()}", title_justify="left")
        table.add_column("stage")
        table.add_column("done", justify="right")
        table.add_column("", min_width=20)
        with self._lock:
            rows = [(st, self.done.get(st, 0), n) for st, n in self.total.items()]
        for st, d, n in rows:
            filled = int(20 * d / n) if n else 20
            table.add_row(st, f"{d}/{n}", "█" * filled + "·" * (20 - filled))
        running = self._running_now()
        if running:
            table.caption = "running: " + ", ".join(running)
            table.caption_justify = "left"
        return table

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            if time.perf_counter() - self._last_print >= self.heartbeat:
                running = self._running_now()
                now = f"; running {', '.join(running)}" if running else ""
                self._print(f"  … {self._summary()}{now}")

    def _print(self, line: str) -> None:
        self._last_print = time.perf_counter()
        print(line, file=self.stream, flush=True)


def silent_progress() -> RunProgress:
    """A progress that prints nothing (tests, the Python API without ``progress=``)."""
    import io

    return RunProgress(live=False, stream=io.StringIO(), heartbeat=float("inf"))


__all__ = ["RunProgress", "silent_progress"]

"""`process_*` metrics of every worker of a multi-process service, labelled by `pid`.

prometheus_client's process collector describes only the process that answers the scrape, and
its multiprocess mode leaves it out altogether: with several uvicorn workers, `process_*` used to
vanish. The workers all write their metric files into one directory, named `<kind>_<pid>.db`;
whichever worker answers the scrape reads `/proc` for each of those pids that is still alive.
The `pid` label is bounded by the number of workers (files of dead workers are skipped).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_PID_FILE = re.compile(r"_(\d+)\.db$")


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


class WorkerProcessCollector(Collector):
    """CPU, memory, open files and start time of each live worker writing into `directory`."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._btime = _boot_time()

    def pids(self) -> list[int]:
        found = set()
        for entry in self.directory.glob("*.db"):
            match = _PID_FILE.search(entry.name)
            if match and Path(f"/proc/{match.group(1)}").exists():
                found.add(int(match.group(1)))
        return sorted(found)

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        cpu = CounterMetricFamily(
            "process_cpu_seconds", "User and system CPU time spent, in seconds", labels=["pid"]
        )
        rss = GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory size, in bytes", labels=["pid"]
        )
        vms = GaugeMetricFamily(
            "process_virtual_memory_bytes", "Virtual memory size, in bytes", labels=["pid"]
        )
        fds = GaugeMetricFamily("process_open_fds", "Open file descriptors", labels=["pid"])
        start = GaugeMetricFamily(
            "process_start_time_seconds",
            "Start time of the process since the epoch, in seconds",
            labels=["pid"],
        )
        for pid in self.pids():
            try:
                raw = Path(f"/proc/{pid}/stat").read_text()
                fields = raw[raw.rfind(")") + 2 :].split()
                open_fds = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue  # the worker ended between listing and reading
            label = [str(pid)]
            # Fields after the command name, 0-based: utime 11, stime 12, starttime 19,
            # vsize 20, rss 21 (proc(5), counting from `state`).
            cpu.add_metric(label, (int(fields[11]) + int(fields[12])) / self._ticks)
            start.add_metric(label, self._btime + int(fields[19]) / self._ticks)
            vms.add_metric(label, float(fields[20]))
            rss.add_metric(label, float(int(fields[21]) * self._page))
            fds.add_metric(label, float(open_fds))
        return [cpu, rss, vms, fds, start]

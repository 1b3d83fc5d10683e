"""Load test of the HTTP service: ``kerec serve`` in a subprocess on loopback, 20 concurrent chat
sessions for ``--duration`` seconds, then ``/recommend`` at increasing request rates.

    OMP_NUM_THREADS=1 .venv/bin/python eval/bench_load.py --duration 300

The server is started as ``python -m kerec.serve`` (the same code as ``kerec serve``) on the embedded
default (ml-100k, in-process graph store) with the trained retriever (``kerec train retriever`` writes
``~/.cache/kerec/retriever/retriever.pt``) and ``--llm none`` unless ``--llm`` names a spec.

1. **Chat**: ``--sessions`` simulated people, each a closed loop (send, wait for the reply, send the next
   message) through scripted conversations of ``len(SCRIPT)`` turns, then a fresh session; every other
   person gives a dataset user id. Reports requests served, errors (any non-200 or transport error),
   p50/p95/max latency.
2. **/recommend rate steps**: open loop — requests are sent on a fixed schedule (``rate`` per second for
   ``--step-seconds``) whatever the answers do, random users, ``k=10`` with explanations. A rate is *held*
   when there are 0 errors, p95 latency ≤ ``--p95-bound`` and the answers kept up (completed within
   ``--step-seconds`` + 2 s). Steps stop after the first rate not held.

The server's resident memory (VmRSS from /proc/<pid>/status) is sampled every second throughout.
Writes ``results.json``, ``table.md`` and ``memory.png`` under ``--out``. Client and server share the
machine: the figures are what this machine gives with both on it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ("I'd like a comedy", "something from the 90s", "something else", "no horror please",
          "maybe a thriller or a drama", "more like that")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def summary(self) -> dict[str, object]:
        lat = np.asarray(self.latencies) * 1000
        span = max(self.finished - self.started, 1e-9)
        return {"requests": len(self.latencies) + len(self.errors), "served": len(self.latencies),
                "errors": len(self.errors), "error_examples": self.errors[:5], "seconds": round(span, 2),
                "throughput_per_s": round(len(self.latencies) / span, 2),
                "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95), "max_ms": _pct(lat, 100)}


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


class MemorySampler(threading.Thread):
    """VmRSS of one process every ``every`` seconds, with the phase running at the time."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.phase = pid, every, "start"
        self.samples: list[tuple[float, float, str]] = []  # (seconds since start, RSS MiB, phase)
        self._stop_event = threading.Event()
        self.t0 = time.monotonic()

    def rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            rss = self.rss_mib()
            if rss is not None:
                self.samples.append((round(time.monotonic() - self.t0, 1), round(rss, 1), self.phase))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, port: int, log: Path) -> tuple[subprocess.Popen, list[str]]:
    cmd = [sys.executable, "-m", "kerec.serve", "--host", "127.0.0.1", "--port", str(port), "--llm", args.llm,
           "--checkpoint", args.checkpoint, "--workers", str(args.workers)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, cmd


async def wait_ready(client: object, base: str, proc: subprocess.Popen, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} while starting; see its log")
        try:
            r = await client.get(base + "/ready")  # type: ignore[attr-defined]
            if r.status_code == 200:
                return time.monotonic() - t0
        except Exception:  # not listening yet
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {timeout:.0f} s")


async def chat_phase(client: object, base: str, sessions: int, duration: float, users: list[str]) -> Tally:
    tally = Tally(started=time.monotonic())
    deadline = tally.started + duration

    async def person(n: int) -> None:
        conversation = 0
        while time.monotonic() < deadline:
            session = f"bench-{n}-{conversation}"
            user = users[n % len(users)] if n % 2 == 0 else None
            for message in SCRIPT:
                if time.monotonic() >= deadline:
                    return
                body = {"session": session, "message": message, **({"user": user} if user else {})}
                t0 = time.perf_counter()
                try:
                    r = await client.post(base + "/chat", json=body)  # type: ignore[attr-defined]
                    ok = r.status_code == 200
                    why = f"HTTP {r.status_code}: {r.text[:200]}"
                except Exception as exc:  # a transport error is an error too
                    ok, why = False, f"{type(exc).__name__}: {exc}"
                if ok:
                    tally.latencies.append(time.perf_counter() - t0)
                else:
                    tally.errors.append(why)
            conversation += 1

    await asyncio.gather(*(person(n) for n in range(sessions)))
    tally.finished = time.monotonic()
    return tally


async def rate_step(client: object, base: str, rate: float, seconds: float, users: list[str], seed: int) -> Tally:
    rng = random.Random(seed)
    tally = Tally(started=time.monotonic())
    count = max(1, int(rate * seconds))

    async def one(at: float, user: str) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        t0 = time.perf_counter()
        try:
            r = await client.post(base + "/recommend", json={"user": user, "k": 10})  # type: ignore[attr-defined]
            ok, why = r.status_code == 200, f"HTTP {r.status_code}: {r.text[:200]}"
        except Exception as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if ok:
            tally.latencies.append(time.perf_counter() - t0)
        else:
            tally.errors.append(why)

    start = time.monotonic() + 0.2
    await asyncio.gather(*(one(start + i / rate, rng.choice(users)) for i in range(count)))
    tally.finished = time.monotonic()
    return tally


async def run(args: argparse.Namespace, base: str, proc: subprocess.Popen, sampler: MemorySampler) -> dict[str, object]:
    import httpx

    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as client:
        sampler.phase = "loading"
        startup = await wait_ready(client, base, proc, args.startup_timeout)
        users = list(range(1, 944)) if args.users is None else args.users
        users = [str(u) for u in users]
        # one warm-up request of each kind, not counted
        await client.post(base + "/recommend", json={"user": users[0], "k": 10})
        await client.post(base + "/chat", json={"session": "warm-up", "message": SCRIPT[0]})
        sampler.phase = "chat"
        chat = await chat_phase(client, base, args.sessions, args.duration, users)
        live_sessions = (await client.get(base + "/ready")).json().get("sessions")
        steps = []
        for n, rate in enumerate(args.rates):
            sampler.phase = f"recommend@{rate:g}/s"
            tally = await rate_step(client, base, rate, args.step_seconds, users, seed=n)
            s = tally.summary()
            s["rate"] = rate
            s["held"] = (s["errors"] == 0 and s["p95_ms"] is not None and s["p95_ms"] <= args.p95_bound * 1000
                         and tally.finished - tally.started <= args.step_seconds + 2.0)
            steps.append(s)
            print(f"  /recommend at {rate:g}/s: p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, {s['errors']} errors, "
                  f"{'held' if s['held'] else 'NOT held'}", flush=True)
            if not s["held"]:
                break
        sampler.phase = "idle"
        await asyncio.sleep(2)
    return {"startup_seconds": round(startup, 1), "chat": {**chat.summary(), "live_sessions_after": live_sessions},
            "recommend_steps": steps}


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def plot_memory(samples: list[tuple[float, float, str]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    t = [s[0] for s in samples]
    ax.plot(t, [s[1] for s in samples], color="#4C72B0", lw=1.5)
    phases: list[tuple[str, float, float]] = []  # (phase, first, last second); rate steps shown as one
    for ts, _, phase in samples:
        phase = "recommend steps" if phase.startswith("recommend@") else phase
        if phases and phases[-1][0] == phase:
            phases[-1] = (phase, phases[-1][1], ts)
        else:
            phases.append((phase, ts, ts))
    colours = {"loading": "#eeeeee", "chat": "#e3f0e3", "recommend steps": "#fbeee0"}
    top = max((s[1] for s in samples), default=1.0) * 1.12
    for phase, a, b in phases:
        if phase in colours:
            ax.axvspan(a, b, color=colours[phase], lw=0)
            ax.text((a + b) / 2, top * 0.98, phase, ha="center", va="top", fontsize=8)
    ax.set_ylim(0, top)
    ax.set_xlabel("seconds since the server started")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_title("kerec serve: resident memory over the load test")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def write_table(result: dict[str, object], out: Path) -> None:
    chat = result["chat"]
    steps = result["recommend_steps"]
    mem = result["memory"]
    held = [s["rate"] for s in steps if s["held"]]
    lines = [
        "# Load test: kerec serve", "",
        f"Command: `{result['command']}` (code at commit {result['git_commit']})", "",
        f"Server: `{result['server_command']}` (OMP_NUM_THREADS={result['omp_threads']}), {result['machine']}. "
        "Client and server share the machine, and so did other jobs: load average (1/5/15 min) "
        f"{' / '.join(map(str, result['load_average_1_5_15']['start']))} at the start, "
        f"{' / '.join(map(str, result['load_average_1_5_15']['end']))} at the end.", "",
        f"Start-up to `/ready`: {result['startup_seconds']} s.", "",
        f"## Chat: {result['sessions']} concurrent sessions for {result['duration']} s (closed loop)", "",
        "| requests | served | errors | throughput (req/s) | p50 (ms) | p95 (ms) | max (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {chat['requests']} | {chat['served']} | {chat['errors']} | {chat['throughput_per_s']} | "
        f"{chat['p50_ms']} | {chat['p95_ms']} | {chat['max_ms']} |", "",
        f"Each simulated person runs conversations of {len(SCRIPT)} turns ({', '.join(map(repr, SCRIPT))}), then "
        f"starts a new session; every other person gives a user id. Live chat sessions held by the server "
        f"after the phase: {chat['live_sessions_after']} (the engine keeps up to 1,000, idle ones for 1 h).", "",
        f"## /recommend at fixed rates (open loop, {result['step_seconds']} s per step, k=10 with explanations)", "",
        f"A rate is held with 0 errors and p95 ≤ {result['p95_bound_ms']:g} ms. "
        f"Highest rate held: **{max(held) if held else 'none'}{'/s' if held else ''}**.", "",
        "| rate (req/s) | requests | errors | achieved (req/s) | p50 (ms) | p95 (ms) | max (ms) | held |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|",
        *[f"| {s['rate']:g} | {s['requests']} | {s['errors']} | {s['throughput_per_s']} | {s['p50_ms']} | "
          f"{s['p95_ms']} | {s['max_ms']} | {'yes' if s['held'] else 'no'} |" for s in steps], "",
        "## Server memory (VmRSS, sampled every second)", "",
        f"After start-up {mem['after_startup_mib']} MiB; at the end of the chat phase {mem['end_of_chat_mib']} MiB; "
        f"peak {mem['peak_mib']} MiB; at the end {mem['end_mib']} MiB. Picture: `memory.png`.", "",
    ]
    (out / "table.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="default")
    p.add_argument("--llm", default="none", help="LLM spec for the server ('none': GNN ranking, templated explanations)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of the chat phase")
    p.add_argument("--rates", type=float, nargs="+", default=[0.5, 1, 2, 3, 4, 6, 8])
    p.add_argument("--step-seconds", type=float, default=30.0)
    # Alone on this machine the slowest users' /recommend (long histories: thousands of KG paths) already
    # take ~1 s, so a 1 s bound would measure that tail, not capacity; 2 s leaves room for queueing.
    p.add_argument("--p95-bound", type=float, default=2.0, help="seconds (default 2)")
    p.add_argument("--users", nargs="+", default=None, help="user ids (default: ml-100k's 1..943)")
    p.add_argument("--startup-timeout", type=float, default=300.0)
    p.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "load")
    args = p.parse_args(argv)
    if args.checkpoint == "default":
        from kerec.paths import default_checkpoint

        if not default_checkpoint().is_file():
            print(f"no retriever at {default_checkpoint()}; run `OMP_NUM_THREADS=1 .venv/bin/kerec train retriever` "
                  "first", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, cmd = start_server(args, port, args.out / "server.log")
    sampler = MemorySampler(proc.pid)
    sampler.start()
    load_before = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    try:
        result = asyncio.run(run(args, base, proc, sampler))
    finally:
        sampler.stop()
        stop_server(proc)
    samples = sampler.samples
    chat_rss = [s[1] for s in samples if s[2] == "chat"]
    loaded = [s[1] for s in samples if s[2] == "loading"]
    from kerec.eval.command import recorded_command

    result.update({
        "command": recorded_command("OMP_NUM_THREADS=1 .venv/bin/python eval/bench_load.py", argv),
        "server_command": shlex.join(["python", *cmd[1:]]), "omp_threads": os.environ.get("OMP_NUM_THREADS", "1"),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}",
        "sessions": args.sessions, "duration": args.duration, "step_seconds": args.step_seconds,
        "p95_bound_ms": args.p95_bound * 1000, "llm": args.llm, "workers": args.workers,
        "memory": {"after_startup_mib": loaded[-1] if loaded else None,
                   "end_of_chat_mib": chat_rss[-1] if chat_rss else None,
                   "peak_mib": max((s[1] for s in samples), default=None),
                   "end_mib": samples[-1][1] if samples else None},
        "memory_samples": samples, "git_commit": commit or None,
        "load_average_1_5_15": {"start": [round(x, 2) for x in load_before],
                                "end": [round(x, 2) for x in os.getloadavg()]},
    })
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    write_table(result, args.out)
    plot_memory(samples, args.out / "memory.png")
    print((args.out / "table.md").read_text())
    return 0 if result["chat"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

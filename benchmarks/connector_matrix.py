"""Send-to-receive latency and throughput through the Matrix connector, against raw httpx
calls on the same Synapse in the same run, as a ratio (goal: the connector within 1.2x).

    python benchmarks/connector_matrix.py [--messages 200] [--burst 100] [--rounds 4]

Both ways are the same conversation: one account sends into a room, a second account,
long-polling ``/sync``, receives. Through the connector, both ends are MatrixConnectors (the
receiver configured with the sender as its operator); raw, both ends are plain httpx calls
(``PUT .../send`` and a ``/sync`` loop). Both ways are up at once, in rooms of their own, and
their samples interleave, so that this noisy machine's load hits both alike. Latency is one
message at a time, from the start of the send to the receiver's handler; throughput is a burst
of sends back to back, until the receiver has them all.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from mosaic_conformance.connectors.matrix import MatrixConnector
from mosaic_conformance.connectors.types import MatrixConfig, OutboundMessage
from mosaic_conformance.harness.chat.homeserver import Account, MatrixUser, open_homeserver

RECEIVE_TIMEOUT_S = 30.0
API = "/_matrix/client/v3"


class Arrivals:
    """When each text arrived at the receiving end."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._changed = threading.Condition()

    def arrived(self, text: str) -> None:
        with self._changed:
            self._at.setdefault(text, time.perf_counter())
            self._changed.notify_all()

    def wait(self, texts: list[str]) -> dict[str, float]:
        deadline = time.monotonic() + RECEIVE_TIMEOUT_S
        with self._changed:
            while not all(t in self._at for t in texts):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [t for t in texts if t not in self._at]
                    raise TimeoutError(f"{len(missing)} message(s) never arrived: {missing[:3]}")
                self._changed.wait(left)
            return {t: self._at[t] for t in texts}


class Way:
    """One way through: ``send(text)`` and an :class:`Arrivals` fed by the receiving end."""

    name: str
    arrivals: Arrivals

    def send(self, text: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ThroughConnector(Way):
    name = "connector"

    def __init__(self, url: str, room: str, sender: Account, receiver: Account) -> None:
        self.arrivals = Arrivals()
        self._sender = MatrixConnector(MatrixConfig(url, sender.user_id, room), sender.access_token)
        config = MatrixConfig(url, receiver.user_id, room, (sender.user_id,))
        self._receiver = MatrixConnector(config, receiver.access_token)
        self._receiver.subscribe(lambda m: self.arrivals.arrived(m.text))

    def send(self, text: str) -> None:
        result = self._sender.send(OutboundMessage(text))
        if not result.delivered:
            raise RuntimeError(f"the connector did not deliver: {result.error}")

    def close(self) -> None:
        self._sender.close()
        self._receiver.close()


class RawHttpx(Way):
    name = "raw httpx"

    def __init__(self, url: str, room: str, sender: Account, receiver: Account) -> None:
        self.arrivals = Arrivals()
        self._room_path = f"{API}/rooms/{quote(room, safe='')}"
        auth = {"Authorization": f"Bearer {sender.access_token}"}
        self._send = httpx.Client(base_url=url, headers=auth, timeout=30, trust_env=False)
        auth = {"Authorization": f"Bearer {receiver.access_token}"}
        self._sync = httpx.Client(base_url=url, headers=auth, timeout=60, trust_env=False)
        self._filter = json.dumps(
            {"room": {"rooms": [room], "timeline": {"limit": 100, "types": ["m.room.message"]}}}
        )
        self._room = room
        self._stop = threading.Event()
        self._since = self._sync.get(
            f"{API}/sync", params={"filter": self._filter, "timeout": 0}
        ).json()["next_batch"]
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                body = self._sync.get(
                    f"{API}/sync",
                    params={"filter": self._filter, "timeout": 30000, "since": self._since},
                ).json()
            except (httpx.HTTPError, RuntimeError):
                return  # closed
            room = body.get("rooms", {}).get("join", {}).get(self._room, {})
            for event in room.get("timeline", {}).get("events", []):
                self.arrivals.arrived(event["content"].get("body", ""))
            self._since = body["next_batch"]

    def send(self, text: str) -> None:
        path = f"{self._room_path}/send/m.room.message/{uuid.uuid4().hex}"
        response = self._send.put(path, json={"msgtype": "m.text", "body": text})
        response.raise_for_status()

    def close(self) -> None:
        self._stop.set()
        self._send.close()
        self._sync.close()


@dataclass(frozen=True)
class Figures:
    p50_ms: float
    p95_ms: float
    per_second: float


def latency(way: Way, n: int) -> float:
    text = f"{way.name} latency {n} {uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    way.send(text)
    return way.arrivals.wait([text])[text] - start


def throughput(way: Way, burst: int) -> float:
    texts = [f"{way.name} burst {n} {uuid.uuid4().hex[:6]}" for n in range(burst)]
    start = time.perf_counter()
    for text in texts:
        way.send(text)
    return burst / (max(way.arrivals.wait(texts).values()) - start)


def measure(ways: list[Way], messages: int, burst: int, rounds: int) -> dict[str, Figures]:
    """Samples interleaved way by way, so that the machine's changing load hits both alike."""
    latencies: dict[str, list[float]] = {w.name: [] for w in ways}
    rates: dict[str, list[float]] = {w.name: [] for w in ways}
    for n in range(messages):
        for way in ways if n % 2 else ways[::-1]:
            latencies[way.name].append(latency(way, n))
    for r in range(rounds):
        for way in ways if r % 2 else ways[::-1]:
            rates[way.name].append(throughput(way, burst))
    figures = {}
    for name, samples in latencies.items():
        steps = statistics.quantiles(samples, n=20)  # 5 % steps: [9] is p50, [18] p95
        figures[name] = Figures(steps[9] * 1000, steps[18] * 1000, statistics.median(rates[name]))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="latency samples per way")
    parser.add_argument("--burst", type=int, default=100, help="messages in a throughput burst")
    parser.add_argument("--rounds", type=int, default=4, help="throughput bursts per way")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        with open_homeserver("synapse", Path(scratch), {}) as synapse:
            print(f"synapse ready in {time.perf_counter() - started:.1f} s at {synapse.url}")
            sender, receiver = synapse.register_unique("a"), synapse.register_unique("b")
            owner = MatrixUser(synapse.url, sender)
            joiner = MatrixUser(synapse.url, receiver)
            makers: list[Callable[[str], Way]] = [
                lambda room: ThroughConnector(synapse.url, room, sender, receiver),
                lambda room: RawHttpx(synapse.url, room, sender, receiver),
            ]
            ways = []
            for make in makers:  # a room each, both listening at once
                room = owner.create_room("bench")
                joiner.join(room)
                ways.append(make(room))
            try:
                figures = measure(ways, args.messages, args.burst, args.rounds)
            finally:
                for way in ways:
                    way.close()
                owner.close()
                joiner.close()

    connector, raw = figures["connector"], figures["raw httpx"]
    print(
        f"{'':12} {'p50 ms':>8} {'p95 ms':>8} {'msgs/s':>8}   "
        f"({args.messages} messages each, interleaved; msgs/s: median of {args.rounds} bursts "
        f"of {args.burst})"
    )
    for name, f in (("connector", connector), ("raw httpx", raw)):
        print(f"{name:12} {f.p50_ms:8.1f} {f.p95_ms:8.1f} {f.per_second:8.1f}")
    print(
        f"{'ratio':12} {connector.p50_ms / raw.p50_ms:8.2f} {connector.p95_ms / raw.p95_ms:8.2f}"
        f" {raw.per_second / connector.per_second:8.2f}   (connector / raw; for msgs/s raw / "
        "connector; goal <= 1.2)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

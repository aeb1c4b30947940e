"""What the tmux and Discord connectors cost: prints latency (p50, p95, in ms) and messages
per second, through the connector and raw on the same server in the same run.

    python benchmarks/connector_chat.py [--messages 100] [--only tmux|discord]

- tmux, send: ``connector.send`` (returns once the chat pane has the message on screen)
  against one raw request to the pane's socket; operator to subscriber: a line typed with
  ``send-keys`` until the subscriber has it (it includes spawning ``tmux`` for the keys,
  and the connector's 50 ms inbox poll).
- Discord (the local stand-in), send: ``connector.send`` against one raw httpx POST with
  the same body; operator to subscriber: a message posted until the subscriber has it, at
  the poll interval the suite uses (0.2 s) and at 0.05 s.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from mosaic_conformance.connectors.discord import DiscordConnector
from mosaic_conformance.connectors.tmux import chat_request, create_connector
from mosaic_conformance.connectors.tmux_chat import chat_dir
from mosaic_conformance.connectors.types import (
    DiscordConfig,
    InboundMessage,
    OrchestratorConnector,
    OutboundMessage,
)
from mosaic_conformance.harness.chat.discord import DiscordTarget
from mosaic_conformance.harness.chat.discord_standin import DiscordStandIn
from mosaic_conformance.harness.chat.target import Scenario, TargetOptions
from mosaic_conformance.harness.chat.tmux import TmuxTarget

MESSAGE = "please rebase on main and run the whole test suite before you push ✓"


Cost = tuple[list[float], float]
Cost2 = tuple[Cost, Cost]


def measure(calls: int, one: Callable[[], None]) -> Cost:
    """Seconds per call, and calls per second over the whole run."""
    costs = []
    start = time.perf_counter()
    for _ in range(calls):
        began = time.perf_counter()
        one()
        costs.append(time.perf_counter() - began)
    return costs, calls / (time.perf_counter() - start)


def side_by_side(calls: int, raw: Callable[[], None], connector: Callable[[], None]) -> Cost2:
    """Both timed in turns, after a warm-up, so the machine's noise falls on both alike."""
    for _ in range(5):
        raw(), connector()
    raw_costs: list[float] = []
    costs: list[float] = []
    for _ in range(calls):
        for one, into in ((raw, raw_costs), (connector, costs)):
            began = time.perf_counter()
            one()
            into.append(time.perf_counter() - began)
    return (raw_costs, 1 / statistics.fmean(raw_costs)), (costs, 1 / statistics.fmean(costs))


def report(label: str, costs: list[float], rate: float, raw: list[float] | None = None) -> None:
    ms = sorted(c * 1000 for c in costs)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    ratio = ""
    if raw:
        ratio = f"   x{statistics.median(costs) / statistics.median(raw):5.2f} raw (p50)"
    line = f"{label:<44} p50 {statistics.median(ms):8.2f}   p95 {p95:8.2f}   {rate:7.1f}/s"
    print(line + ratio)


class Arrivals:
    """A subscriber that lets the benchmark wait for one text."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._changed = threading.Condition()

    def __call__(self, message: InboundMessage) -> None:
        with self._changed:
            self._seen.add(message.text)
            self._changed.notify_all()

    def wait(self, text: str, timeout: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: text in self._seen, timeout):
                raise TimeoutError(f"{text!r} did not arrive within {timeout:g}s")


def operator_to_subscriber(scenario: Scenario, connector: OrchestratorConnector, n: int) -> Cost:
    """Post as the operator, until the subscriber has it; ``n`` times."""
    arrivals = Arrivals()
    connector.subscribe(arrivals)

    def one() -> None:
        text = f"operator {secrets.token_hex(4)}"
        scenario.operator.post(text)
        arrivals.wait(text)

    return measure(n, one)


def bench_tmux(messages: int, workdir: Path) -> None:
    target = TmuxTarget(TargetOptions("tmux", lambda c, _env: create_connector(c), workdir))
    with target.scenario() as scenario:
        connector = scenario.connect()
        directory = chat_dir(scenario.socket_name, "mosaic-orchestrator")  # type: ignore[attr-defined]

        def raw() -> None:
            request = {"op": "show", "id": secrets.token_hex(6), "text": MESSAGE}
            chat_request(directory, request)

        def send() -> None:
            assert connector.send(OutboundMessage(MESSAGE)).delivered

        (raw_costs, raw_rate), (costs, rate) = side_by_side(messages, raw, send)
        report("tmux send, raw pane request", raw_costs, raw_rate)
        report("tmux send, connector", costs, rate, raw_costs)

        costs, rate = operator_to_subscriber(scenario, connector, max(10, messages // 5))
        report("tmux operator -> subscriber", costs, rate)


def bench_discord(messages: int, workdir: Path) -> None:
    with DiscordStandIn() as standin:
        target = DiscordTarget(standin, TargetOptions("discord", lambda c, _e: None, workdir))  # type: ignore[arg-type,return-value]
        with target.scenario() as scenario:
            token = scenario.bot.token or ""  # type: ignore[attr-defined]
            channel = scenario.channel_id  # type: ignore[attr-defined]
            config = DiscordConfig(channel, (scenario.operator.sender_id,), standin.api_base)
            headers = {"Authorization": f"Bot {token}"}
            connector = DiscordConnector(config, token)
            with httpx.Client(base_url=standin.api_base, headers=headers) as client:

                def raw() -> None:
                    body = {"content": MESSAGE, "nonce": secrets.token_hex(11)}
                    body["enforce_nonce"] = True
                    client.post(f"/channels/{channel}/messages", json=body).raise_for_status()

                def send() -> None:
                    assert connector.send(OutboundMessage(MESSAGE)).delivered

                try:
                    (raw_costs, raw_rate), (costs, rate) = side_by_side(messages, raw, send)
                finally:
                    connector.close()
            report("discord send, raw httpx POST", raw_costs, raw_rate)
            report("discord send, connector", costs, rate, raw_costs)
            for poll in (0.2, 0.05):
                connector = DiscordConnector(config, token, poll_interval=poll)
                try:
                    n = max(10, messages // 5)
                    costs, rate = operator_to_subscriber(scenario, connector, n)
                    report(f"discord operator -> subscriber, poll {poll:g}s", costs, rate)
                finally:
                    connector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--only", choices=("tmux", "discord"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        if args.only in (None, "tmux"):
            bench_tmux(args.messages, Path(workdir))
        if args.only in (None, "discord"):
            bench_discord(args.messages, Path(workdir))


if __name__ == "__main__":
    main()

"""One result row and the markdown table every benchmark prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How a row is judged: ours/peer <= limit ("ratio"), ours - peer <= limit ("excess"),
# or ours <= limit on its own ("at_most", the peer column then is for information).
Comparison = Literal["ratio", "excess", "at_most"]


@dataclass(frozen=True)
class Result:
    """One measurement of ours against a peer (or a baseline), with its target."""

    benchmark: str
    ours: float
    peer: float | None
    peer_name: str
    unit: str
    limit: float
    compare: Comparison = "ratio"

    @property
    def ratio(self) -> float | None:
        if self.peer is None:
            return None
        return self.ours / self.peer if self.peer else float("inf")

    @property
    def met(self) -> bool:
        if self.compare == "ratio":
            ratio = self.ratio
            return ratio is not None and ratio <= self.limit
        if self.compare == "excess":
            return self.peer is not None and self.ours - self.peer <= self.limit
        return self.ours <= self.limit

    @property
    def target(self) -> str:
        if self.limit == float("inf"):
            return "reported"
        if self.compare == "ratio":
            return f"<= {self.limit:.2f}x"
        if self.compare == "excess":
            return f"<= peer + {self.limit:g} {self.unit}"
        return f"<= {self.limit:g} {self.unit}"


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} {unit}" if value != int(value) else f"{int(value)} {unit}"


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| benchmark | jupyter-repro | peer | peer value | ratio (ours/peer) | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        lines.append(
            f"| {r.benchmark} | {_value(r.ours, r.unit)} | {r.peer_name} "
            f"| {_value(r.peer, r.unit)} | {ratio} | {r.target} | {'yes' if r.met else 'NO'} |"
        )
    return "\n".join(lines)

"""One result row and the markdown table every benchmark prints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One measurement of ours against a peer (or a baseline), as a ratio with a target."""

    benchmark: str
    ours: float
    peer: float
    peer_name: str
    unit: str
    target_ratio: float  # the most ours/peer may be

    @property
    def ratio(self) -> float:
        return self.ours / self.peer if self.peer else float("inf")

    @property
    def met(self) -> bool:
        return self.ratio <= self.target_ratio


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| benchmark | jupyter-repro | peer | peer value | ratio (ours/peer) | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.benchmark} | {r.ours:.3f} {r.unit} | {r.peer_name} | {r.peer:.3f} {r.unit} "
            f"| {r.ratio:.2f}x | <= {r.target_ratio:.2f}x | {'yes' if r.met else 'NO'} |"
        )
    return "\n".join(lines)

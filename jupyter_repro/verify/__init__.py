"""Verifying a notebook: execute it again, compare with its outputs or fingerprints, report.

- `compare`: pure comparison of a cell's fresh outputs with its reference (nbval's semantics,
  sanitizers, numeric tolerance, image digests) and the per-cell directives (tags, metadata);
- `execute`: running a copy of the notebook with nbclient;
- `service`: `VerifyService`, which runs, compares and builds the report (for the CLI and REST);
- `report`: `VerifyReport` as JSON, Markdown or HTML, and the `verified` metadata record.

Only the light modules are re-exported here; import `execute` and `service` (nbclient, kernels)
from their modules.
"""

from .compare import (
    CELL_STATUSES,
    CellStatus,
    Comparison,
    DirectiveError,
    Directives,
    Tolerance,
    cell_directives,
    compare_fingerprints,
    compare_outputs,
)
from .report import CellResult, VerifyReport, utc_now, verified_record

__all__ = [
    "CELL_STATUSES",
    "CellResult",
    "CellStatus",
    "Comparison",
    "DirectiveError",
    "Directives",
    "Tolerance",
    "VerifyReport",
    "cell_directives",
    "compare_fingerprints",
    "compare_outputs",
    "utc_now",
    "verified_record",
]

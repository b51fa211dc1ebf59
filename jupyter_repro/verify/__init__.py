"""Verifying a notebook: execute it again, compare with its outputs or fingerprints, report.

- `compare`: pure comparison of a cell's fresh outputs with its reference (nbval's semantics,
  sanitizers, numeric tolerance, image digests) and the per-cell directives (tags, metadata);
- `execute`: running a copy of the notebook with nbclient;
- `service`: `VerifyService`, which runs, compares and builds the report (for the CLI and REST);
- `report`: `VerifyReport` as JSON, Markdown or HTML, and the `verified` metadata record.

Nothing is imported here: the server imports `errors` at start-up and the rest on first use,
so import each module by its name.
"""

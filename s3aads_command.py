"""The ``s3aads`` command's entry point, outside the package: importing the package loads pandas,
boto3 and pyarrow, and a Ctrl-C meanwhile should end the command quietly, not in a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from s3aads_pandas.cli import exit_with
        from s3aads_pandas.cli import main as run
    except KeyboardInterrupt:  # while starting: nothing was done yet
        print("s3aads: interrupted", file=sys.stderr)
        sys.exit(130)
    exit_with(run())

"""``python -m s3aads_pandas``: the same as the ``s3aads`` command."""

import sys

from s3aads_pandas.cli import main

sys.exit(main())

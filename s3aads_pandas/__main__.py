"""``python -m s3aads_pandas``: the same as the ``s3aads`` command."""

from s3aads_pandas.cli import exit_with, main

exit_with(main())

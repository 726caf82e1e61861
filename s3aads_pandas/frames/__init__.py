"""pandas I/O: ``pd.read_s3aads``, the ``df.s3aads`` accessor and payload codecs."""

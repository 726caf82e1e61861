"""Storage: the only code that talks to S3 (the adapter), its single retry layer, and redaction."""

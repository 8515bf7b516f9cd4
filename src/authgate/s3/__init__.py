"""S3 at the gate: SigV4 access checks, bucket grants, S3 error answers."""

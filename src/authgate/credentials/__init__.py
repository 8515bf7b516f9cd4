"""Credentials: token format, verifiers, the verified-key cache, static tokens, the admin key."""

"""Managing credentials and accounts: keys, users, roles, access keys, audit, usage."""

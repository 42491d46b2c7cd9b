"""Screenshots of the running development instance for the README."""

"""Reference city client: signs and sends activations as an RTCC would.

`python -m tools.city --help` (or `scripts/city --help`) lists the commands;
`tools.city.client` holds the payload building and signing as plain functions.
"""

"""Tools for working with rtcc_share from outside Home Assistant."""

"""Tests of the developer and city tools (tools/, scripts/develop)."""

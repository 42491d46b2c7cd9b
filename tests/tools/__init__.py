"""Tests of the development tools (tools/demo, scripts/develop)."""

"""Tests for the rtcc_share integration."""

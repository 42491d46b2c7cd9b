"""Tests of the automation blueprints (blueprints/)."""

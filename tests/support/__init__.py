"""Test doubles and fixtures shared by the suite: the fake API server, the PagerDuty and
webhook receivers, pebble and BIND9 starters, object factories and the shared worlds.
No test module imports another; they all import from here."""

"""Real Debian 12 hosts for the deploy tests, three per session: tests/support/hosts.py."""

from tests.support.hosts import test_hosts

__all__ = ["test_hosts"]

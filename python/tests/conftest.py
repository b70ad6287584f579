"""The routers these tests talk to are started by test/integration/python-package.test.ts (bun), which passes their addresses.

Run from the repository root: ./node_modules/.bin/bun test test/integration/python-package.test.ts
A missing address fails the test (it is never skipped).
"""

import os

import pytest


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through test/integration/python-package.test.ts, which starts the router", pytrace=False)
    return value


@pytest.fixture
def address() -> str:
    """A router (no auth) with the TypeScript TsPeerService registered."""
    return _env("VOIDRAIL_TEST_ADDRESS")


@pytest.fixture
def auth_address() -> str:
    """A router that requires the client key VOIDRAIL_TEST_CLIENT_KEY, with TsPeerService."""
    return _env("VOIDRAIL_TEST_AUTH_ADDRESS")


@pytest.fixture
def client_key() -> str:
    return _env("VOIDRAIL_TEST_CLIENT_KEY")

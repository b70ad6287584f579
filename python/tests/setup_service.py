"""A service with setup() and teardown() (`python -m voidrail dealer --module setup_service`), driven by files:
setup() waits for SETUP_GATE to exist (or raises when SETUP_FAIL is set); teardown() writes TEARDOWN_MARK."""

from __future__ import annotations

import os
import time

from voidrail import ServiceDealer, service_method


class Loader(ServiceDealer):
    model = None

    def setup(self):
        if os.environ.get("SETUP_FAIL"):
            raise RuntimeError("no model file")
        gate = os.environ["SETUP_GATE"]
        ends = time.monotonic() + 60
        while not os.path.exists(gate) and time.monotonic() < ends:
            time.sleep(0.02)
        self.model = f"model from {os.path.basename(gate)}"

    def teardown(self):
        with open(os.environ["TEARDOWN_MARK"], "w") as file:
            file.write(f"freed {self.model}")

    @service_method
    def predict(self, x):
        return {"model": self.model, "x": x}

"""A service whose method ignores its cancellation (`python -m voidrail dealer --module stubborn_service`): for TERMINATE."""

from __future__ import annotations

import os
import time

from voidrail import CallContext, ServiceDealer, service_method


class Stubborn(ServiceDealer):
    @service_method(context=True)
    def ignore_cancel(self, marker, context: CallContext):
        """Writes its pid to `marker`, then runs on for a minute whatever it is told: only TERMINATE ends it sooner."""
        with open(marker, "w") as file:
            file.write(str(os.getpid()))
        ends = time.monotonic() + 60
        while time.monotonic() < ends:
            time.sleep(0.05)  # context.cancelled is set on the revoke, and ignored
        return {"cancelled_seen": context.cancelled.is_set()}

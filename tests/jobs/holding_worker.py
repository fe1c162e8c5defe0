"""A worker for the tests: the real run loop of ``archplan worker``, whose plan handler holds a
job — reporting to the job table as a long solve would — while the file named on the command
line exists, then plans it for real.

    python -m tests.jobs.holding_worker HOLD_FILE     (settings from ARCHPLAN_* variables)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from app.jobs.runner import JobContext, run_plan_job
from app.jobs.worker import run_worker
from app.logging_setup import configure_logging
from app.settings import get_settings


def main(hold: Path) -> None:
    def hold_then_plan(ctx: JobContext) -> None:
        ctx.progress(0.0, "Held")
        while hold.exists():
            ctx.check_cancel()
            time.sleep(0.05)
        run_plan_job(ctx)

    settings = get_settings()
    configure_logging(settings.log_level)
    run_worker(settings, name="holding", handlers={"plan": hold_then_plan})


if __name__ == "__main__":
    main(Path(sys.argv[1]))

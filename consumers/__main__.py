"""`python -m consumers [IDLE_SECONDS]`: the consumer without the CLI (containers, systemd)."""

import sys

from adpulse.settings import get_settings
from consumers.service import run_consumer

if __name__ == "__main__":
    idle = float(sys.argv[1]) if len(sys.argv) > 1 else None
    summary = run_consumer(get_settings(), stop_after_idle=idle)
    print(summary)

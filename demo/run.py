"""The main job (`make demo`): each section runs end to end on loopback, no configuration."""

from __future__ import annotations

import after_response
import celery_workers
import crash
import hmvc_page
import seed_requests
import webhooks


def main() -> None:
    seed_requests.main()
    after_response.main()
    hmvc_page.main()
    webhooks.main()
    crash.main()
    celery_workers.main()


if __name__ == "__main__":
    main()

"""The main job (`make demo`): each section runs end to end on loopback, no configuration."""

from __future__ import annotations

import seed_requests


def main() -> None:
    seed_requests.main()


if __name__ == "__main__":
    main()

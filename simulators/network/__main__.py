"""``python -m simulators.network [--host H] [--port 8474] [--seed N] [--config proxies.json]``:
a Toxiproxy-compatible server until Ctrl-C (``--config``: Toxiproxy's JSON array of proxies)."""

from __future__ import annotations

import argparse
from pathlib import Path

from simulators.network.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.network", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port (default 8474)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every toxic's randomness")
    parser.add_argument("--config", type=Path, help="JSON array of proxies to create at start")
    args = parser.parse_args(argv)
    serve(args.host, args.port, seed=args.seed, config=args.config)


if __name__ == "__main__":
    main()

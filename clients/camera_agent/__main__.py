"""Camera agent command line.

Example:
    export CAM1_KEY=...    # the key ingest gave camera cam-1
    python -m clients.camera_agent --config agent.yaml
    python -m clients.camera_agent --ingest-url http://127.0.0.1:8080 \\
        --camera cam-1 rtsp://10.0.0.5/stream1 CAM1_KEY --interval 2
"""

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from clients.camera_agent.agent import Agent
from clients.camera_agent.config import AgentConfig, CameraConfig, load_config
from shared.logging import configure_logging


def build_config(args: argparse.Namespace) -> AgentConfig:
    raw = load_config(args.config).model_dump() if args.config else {"cameras": []}
    for camera_id, source, key_env in args.camera or []:
        raw["cameras"].append(
            CameraConfig(id=camera_id, source=source, api_key_env=key_env, interval_s=args.interval).model_dump()
        )
    if args.ingest_url:
        raw["ingest_url"] = args.ingest_url
    if args.buffer_dir:
        raw["buffer_dir"] = args.buffer_dir
    if args.metrics_port is not None:
        raw["metrics_port"] = args.metrics_port
    return AgentConfig.model_validate(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.camera_agent", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, help="YAML file (see docs/camera-agent.md)")
    parser.add_argument("--ingest-url", help="overrides ingest_url from the file")
    parser.add_argument("--camera", nargs=3, action="append", metavar=("ID", "SOURCE", "KEY_ENV"),
                        help="add a camera: its id, its source, and the env var holding its key (repeatable)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between frames for --camera")
    parser.add_argument("--buffer-dir", type=Path, help="on-disk spool for unsent frames")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    parser.add_argument("--log-format", choices=["json", "console"], default="console")
    args = parser.parse_args(argv)
    configure_logging("camera-agent", fmt=args.log_format)
    try:
        config = build_config(args)
    except (ValidationError, ValueError) as exc:
        print(f"invalid agent configuration:\n{exc}", file=sys.stderr)
        return 2
    agent = Agent(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.request_stop)
        await agent.run()

    try:
        asyncio.run(run())
    except ValueError as exc:  # a missing key env var
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

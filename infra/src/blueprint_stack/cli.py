"""`python -m blueprint_stack run | token | render-gateway`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from types import FrameType

from blueprint_stack import gateway
from blueprint_stack.config import SERVICES, StackConfig
from blueprint_stack.keys import DEV_ORG_ID, DEV_USER_ID, mint_dev_token, parse_roles
from blueprint_stack.observability import ObsConfig
from blueprint_stack.stack import Stack
from blueprint_stack.supervisor import StackError
from servicekit.devstack import PortInUse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m blueprint_stack")
    sub = parser.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run the whole platform until Ctrl-C")
    _var_dir_arg(run)
    run.add_argument("--gateway-port", type=int, help="env BLUEPRINT_GATEWAY_PORT (8080)")
    run.add_argument("--gateway-host", help="env BLUEPRINT_GATEWAY_HOST (127.0.0.1)")
    run.add_argument("--postgres-port", type=int, help="env BLUEPRINT_POSTGRES_PORT (55432)")
    run.add_argument("--redis-port", type=int, help="env BLUEPRINT_REDIS_PORT (56379)")
    run.add_argument(
        "--smtp-port",
        type=int,
        help="the SMTP sink (mails in var/mail); env BLUEPRINT_SMTP_PORT (8025)",
    )
    for svc in SERVICES:
        run.add_argument(
            f"--{svc.short}-port",
            type=int,
            dest=f"{svc.short}_port",
            help=f"{svc.name}; env {svc.port_env} ({svc.default_port})",
        )
    for svc in SERVICES:
        run.add_argument(
            f"--{svc.short}-events-port",
            type=int,
            dest=f"{svc.short}_events_port",
            help=f"/metrics of {svc.events_name}; env {svc.events_port_env} "
            f"({svc.default_events_port})",
        )
    run.add_argument(
        "--celery-metrics-port",
        type=int,
        help="/metrics of notify-celery; env BLUEPRINT_CELERY_METRICS_PORT (8205)",
    )
    run.add_argument(
        "--write-rate", help="gateway writes per client, e.g. 20r/s (env BLUEPRINT_WRITE_RATE)"
    )
    run.add_argument("--write-burst", type=int, help="env BLUEPRINT_WRITE_BURST (40)")
    run.add_argument(
        "--client-max-body-size",
        help="largest request body, e.g. 1m (env BLUEPRINT_CLIENT_MAX_BODY_SIZE)",
    )
    run.add_argument("--log-level", help="services' log level (env BLUEPRINT_LOG_LEVEL, INFO)")
    run.add_argument(
        "--service-workers",
        type=int,
        help="HTTP worker processes per service (env BLUEPRINT_SERVICE_WORKERS, one per core)",
    )
    run.add_argument(
        "--obs",
        action="store_true",
        help="also Prometheus, Alertmanager and the gateway's exporter (env BLUEPRINT_OBS=1)",
    )
    run.add_argument("--prometheus-port", type=int, help="with --obs (9090)")
    run.add_argument("--alertmanager-port", type=int, help="with --obs (9093)")
    run.add_argument("--gateway-exporter-port", type=int, help="with --obs (9113)")
    run.add_argument("--gateway-log-exporter-port", type=int, help="with --obs (9114)")
    run.add_argument("--no-install", action="store_true", help="never run apt-get")
    run.add_argument(
        "--no-restart",
        action="store_true",
        help="a process that crashes stops the stack (default: it is restarted with backoff)",
    )

    token = sub.add_parser("token", help="print a dev bearer token for the local stack")
    _var_dir_arg(token)
    token.add_argument("--roles", default="planner", help="comma separated, e.g. planner,operator")
    token.add_argument("--org", type=uuid.UUID, default=DEV_ORG_ID, help=f"org id ({DEV_ORG_ID})")
    token.add_argument(
        "--user-id", type=uuid.UUID, default=DEV_USER_ID, help=f"user id ({DEV_USER_ID})"
    )
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds the token is valid")

    docs = sub.add_parser("docs", help="write the merged OpenAPI document and Swagger UI")
    docs.add_argument("--out", type=Path, required=True, help="directory nginx serves as /docs")
    _var_dir_arg(docs)

    render = sub.add_parser("render-gateway", help="print the gateway config the stack would use")
    _var_dir_arg(render)
    return parser


def _var_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--var-dir", type=Path, help="where data, logs and keys live (env BLUEPRINT_VAR_DIR)"
    )


def config_from_args(args: argparse.Namespace) -> StackConfig:
    cfg = StackConfig.from_env()
    changes: dict[str, object] = {}
    if args.var_dir is not None:
        changes["var_dir"] = args.var_dir.resolve()
    for attr in (
        "gateway_port",
        "gateway_host",
        "postgres_port",
        "redis_port",
        "celery_metrics_port",
        "smtp_port",
        "write_rate",
        "write_burst",
        "client_max_body_size",
        "log_level",
        "service_workers",
    ):
        value = getattr(args, attr, None)
        if value is not None:
            changes[attr] = value
    ports = dict(cfg.service_ports)
    events_ports = dict(cfg.events_metrics_ports)
    for svc in SERVICES:
        value = getattr(args, f"{svc.short}_port", None)
        if value is not None:
            ports[svc.name] = value
        value = getattr(args, f"{svc.short}_events_port", None)
        if value is not None:
            events_ports[svc.name] = value
    changes["service_ports"] = ports
    changes["events_metrics_ports"] = events_ports
    if getattr(args, "no_install", False):
        changes["install_missing"] = False
    if getattr(args, "no_restart", False):
        changes["restart_policy"] = None
    return replace(cfg, **changes)  # type: ignore[arg-type]


def obs_from_args(args: argparse.Namespace) -> ObsConfig | None:
    """The observability processes to add, when `--obs` or BLUEPRINT_OBS=1 asks for them."""
    wanted = getattr(args, "obs", False) or os.environ.get("BLUEPRINT_OBS", "") in ("1", "true")
    if not wanted:
        return None
    obs = ObsConfig()
    changes = {
        attr: getattr(args, flag)
        for flag, attr in (
            ("prometheus_port", "prometheus_port"),
            ("alertmanager_port", "alertmanager_port"),
            ("gateway_exporter_port", "nginx_exporter_port"),
            ("gateway_log_exporter_port", "gateway_log_exporter_port"),
        )
        if getattr(args, flag, None) is not None
    }
    return replace(obs, **changes)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(config: StackConfig, obs: ObsConfig | None = None) -> int:
    stack = Stack(config, obs=obs)
    # SIGTERM behaves like Ctrl-C: everything started is stopped before we exit. It is the way
    # to stop a runner started in the background by a script, where SIGINT is ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    code = 0
    try:
        stack.start()
        print(stack.summary(), flush=True)
        # Children are started (and restarted) from this, the main thread: their death signal
        # is tied to the thread that started them.
        while True:
            stack.watch()  # restarts crashed processes; ProcessDied when it gives up
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    except PortInUse as exc:
        print(f"blueprint: {exc}{_port_hint(config, exc.what, obs)}", file=sys.stderr)
        return 1
    except StackError as exc:
        print(f"blueprint: {exc}", file=sys.stderr)
        code = 1
    finally:
        # Stopping must not be cut short by a second Ctrl-C: every process gets its SIGKILL.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack.processes:
            stack.console.say("stopping everything")
            stack.stop()
            stack.console.say("stopped")
    return code


def _port_hint(config: StackConfig, what: str, obs: ObsConfig | None = None) -> str:
    """Which flag / variable moves the port that was taken."""
    for setting in config.ports():
        if setting.what == what:
            return f" ({setting.flag} or {setting.env})"
    for _, obs_what, flag in obs.ports() if obs else ():
        if obs_what == what:
            return f" ({flag})"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"blueprint: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "run":
        return run(config, obs_from_args(args))
    if args.cmd == "token":
        try:
            roles = parse_roles(args.roles)
        except ValueError as exc:
            print(f"blueprint: {exc}", file=sys.stderr)
            return 2
        token = mint_dev_token(
            config.keys_dir,
            roles=roles,
            org_id=args.org,
            user_id=args.user_id,
            ttl_seconds=args.ttl,
        )
        print(
            f"# roles={','.join(roles)} org_id={args.org} user_id={args.user_id} "
            f"expires_in={args.ttl}s; use as: Authorization: Bearer <token>",
            file=sys.stderr,
        )
        print(token)
        return 0
    if args.cmd == "docs":
        from blueprint_stack import openapi

        try:
            out = openapi.build(args.out.resolve())
        except openapi.DocsError as exc:
            print(f"blueprint: {exc}", file=sys.stderr)
            return 1
        print(f"API docs written to {out}")
        return 0
    if args.cmd == "render-gateway":
        print(gateway.render_for_stack(config))
        return 0
    return 2

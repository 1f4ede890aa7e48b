"""Rendering the gateway template: every placeholder filled, nginx's own variables untouched,
and the result accepted by the real nginx."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from blueprint_stack import StackConfig
from blueprint_stack.gateway import (
    TemplateError,
    gateway_values,
    placeholders,
    render,
    render_for_stack,
    write_config,
)
from blueprint_stack.install import nginx_binary


@pytest.fixture
def config(tmp_path: Path) -> StackConfig:
    return StackConfig.for_tests(tmp_path / "var")


def test_the_runner_gives_exactly_the_values_the_template_needs(config: StackConfig) -> None:
    template = config.gateway_template.read_text()
    assert placeholders(template) == set(gateway_values(config))


def test_rendering_fills_every_placeholder_and_keeps_nginx_variables(config: StackConfig) -> None:
    text = render_for_stack(config)
    assert "${" not in text
    for nginx_var in ("$request_id", "$http_x_request_id", "$binary_remote_addr", "$upstream_addr"):
        assert nginx_var in text
    assert f"server 127.0.0.1:{config.service_port('task-svc')};" in text
    assert f"listen 127.0.0.1:{config.gateway_port};" in text


def test_limits_come_from_the_config(config: StackConfig) -> None:
    text = render_for_stack(
        replace(config, write_rate="3r/m", write_burst=7, client_max_body_size="16k")
    )
    assert "rate=3r/m;" in text
    assert "burst=7 nodelay;" in text
    assert "client_max_body_size 16k;" in text


def test_overrides_replace_the_runner_values_and_unknown_names_are_refused(
    config: StackConfig,
) -> None:
    text = render_for_stack(config, {"GATEWAY_PROXY_READ_TIMEOUT": "1s"})
    assert "proxy_read_timeout 1s;" in text
    with pytest.raises(TemplateError, match="GATEWAY_NO_SUCH_VALUE"):
        render_for_stack(config, {"GATEWAY_NO_SUCH_VALUE": "x"})


_ERROR_PAGE = re.compile(r"^\s*error_page ([\d ]+?) (=\d*)? ?(/\S+?)(\?\S*)?;", re.M)
_LOCATION = re.compile(r"^\s*location = (/_problem/\d+) \{(.*?)^\s{8}\}", re.M | re.S)
_RETURN = re.compile(r"return (\d{3}) '(\{.*?\})';")


def _problem_locations(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _LOCATION.finditer(text)}


def test_every_error_page_is_an_internal_problem_location(config: StackConfig) -> None:
    # Error pages are reached by URI, never by a named location: nginx cannot jump to a named
    # location for a request line it could not parse, and answered those with its HTML 500.
    text = render_for_stack(config)
    assert "error_page" in text
    assert not re.search(r"error_page [^;]*@", text)
    locations = _problem_locations(text)
    pages = _ERROR_PAGE.findall(text)
    handled = {int(code) for codes, *_ in pages for code in codes.split()}
    assert handled >= {400, 404, 405, 413, 414, 429, 494, 500, 501, 502, 503, 504, 505}
    for _codes, overwrite, uri, _args in pages:
        body = locations[uri]
        assert "internal;" in body, uri
        assert "default_type application/problem+json;" in body, uri
        returns = _RETURN.findall(body)
        assert returns, uri
        for status, problem in returns:
            fields = json.loads(problem.replace("$req_id", "id").replace("$arg_limit", "1m"))
            assert fields["status"] == int(status), uri
            assert set(fields) == {"type", "title", "status", "detail", "code", "request_id"}, uri
            if overwrite not in ("", "="):
                assert overwrite == f"={status}", uri


def test_the_header_limit_problems_name_the_configured_limits(config: StackConfig) -> None:
    text = render_for_stack(config)
    count, size = re.search(r"large_client_header_buffers (\d+) (\d+)k;", text).groups()  # type: ignore[union-attr]
    locations = _problem_locations(text)
    assert f"accepts ({size}k)" in locations["/_problem/414"]
    assert f"up to {size}k" in locations["/_problem/431"]
    assert f"up to {int(count) * int(size)}k" in locations["/_problem/431"]


def test_a_missing_value_is_named() -> None:
    with pytest.raises(TemplateError, match="GATEWAY_LISTEN, TASK_SVC_UPSTREAM"):
        render("listen ${GATEWAY_LISTEN}; server ${TASK_SVC_UPSTREAM}; $remote_addr", {})


def test_lower_case_and_unbraced_names_are_left_alone() -> None:
    assert render("${A} $B ${b} $request_id", {"A": "x"}) == "x $B ${b} $request_id"


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
def test_the_rendered_config_is_valid_for_nginx(config: StackConfig) -> None:
    assert "test is successful" in _nginx_test(config, write_config(config))


def _nginx_test(config: StackConfig, conf: Path) -> str:
    """`nginx -t` on the config: what it says, once it said the config is valid."""
    nginx = nginx_binary()
    assert nginx is not None
    result = subprocess.run(
        [nginx, "-t", "-p", str(config.nginx_dir), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def _http_access_logs(text: str) -> list[str]:
    """The access_log directives at the http level (a location's own ones are indented more)."""
    return re.findall(r"^ {4}(access_log [^;]*;)", text, re.MULTILINE)


def test_the_local_stack_renders_no_second_access_log(config: StackConfig) -> None:
    # The stack's gateway-log-exporter follows the file; nothing is sent anywhere else.
    logs = _http_access_logs(render_for_stack(config))
    assert logs == [f"access_log {config.nginx_dir / 'logs' / 'access.log'} json;"]


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
def test_a_syslog_metrics_access_log_is_added_beside_the_first(config: StackConfig) -> None:
    syslog = "access_log syslog:server=127.0.0.1:9514,tag=gateway,nohostname json;"
    conf = write_config(config, {"GATEWAY_METRICS_ACCESS_LOG": syslog})
    logs = _http_access_logs(conf.read_text())
    assert logs == [f"access_log {config.nginx_dir / 'logs' / 'access.log'} json;", syslog]
    _nginx_test(config, conf)

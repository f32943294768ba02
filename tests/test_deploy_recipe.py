"""The recipe in deploy/ read as text, without Docker (which CI lacks): what compose, nginx and the
image are told. tests/test_deploy.py runs the same parts for real."""

from __future__ import annotations

import json
import re

import pytest

from emotion.app.webrtc import rtc_configuration
from emotion.config import ICE_SERVERS_ENV
from emotion.config import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def render_template(text: str, values: dict[str, str]) -> str:
    """${NAME} filled in for the given names only, as the nginx image's envsubst does; nginx's own
    $variables stay."""
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def test_template_fills_only_its_own_variables():
    conf = render_template((DEPLOY / "nginx.conf.template").read_text(),
                           {"LISTEN_PORT": "8080", "UPSTREAM_SERVERS": "server app:8501;"})
    assert "listen 8080;" in conf and "server app:8501;" in conf
    assert "${" not in conf
    # sticky by cookie, WebSocket upgrade on Streamlit's stream
    assert "hash $emotion_replica consistent;" in conf
    stream = conf[conf.index("location /_stcore/stream"):]
    assert "proxy_set_header Upgrade $http_upgrade;" in stream
    assert "proxy_set_header Connection $connection_upgrade;" in stream


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}, for the test's variables."""
    def fill(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env:
            return env[name]
        if op == ":-":
            return arg
        raise AssertionError(f"compose needs {name}: {arg}")
    return re.sub(r"\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}", fill, text)


def test_compose_wires_replicas_nginx_and_turn():
    yaml = pytest.importorskip("yaml")
    env = {"TURN_EXTERNAL_IP": "203.0.113.7", "TURN_PASSWORD": "pw"}
    compose = yaml.safe_load(_interpolate((DEPLOY / "compose.yaml").read_text(), env))
    app, nginx, coturn = (compose["services"][n] for n in ("app", "nginx", "coturn"))
    assert app["build"]["dockerfile"] == "deploy/Dockerfile"
    assert app["environment"]["EMOTION_DISABLE_TRAINING"] == "1"
    # The ICE servers the replicas get are what the app accepts, pointing at coturn.
    config = rtc_configuration(environ={ICE_SERVERS_ENV: app["environment"][ICE_SERVERS_ENV]})
    assert config["iceServers"][0]["urls"][0] == "turn:203.0.113.7:3478?transport=udp"
    assert config["iceServers"][0]["credential"] == "pw"
    # nginx uses the very template the test runs, and waits for healthy replicas.
    assert "./nginx.conf.template:/etc/nginx/templates/default.conf.template:ro" in nginx["volumes"]
    assert nginx["environment"]["UPSTREAM_SERVERS"] == "server app:8501;"
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"
    assert "--user=emotion:pw" in coturn["command"] and "--min-port=49160" in coturn["command"]
    assert "--allow-loopback-peers" not in coturn["command"]  # that is for the test only


def test_dockerfile_runs_the_app_as_a_user_with_a_health_check():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER emotion$", text, re.M)
    assert "HEALTHCHECK" in text and "/_stcore/health" in text
    assert "EMOTION_DISABLE_TRAINING=1" in text
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text.replace("\\\n", ""), re.M).group(1))
    assert cmd[:3] == ["streamlit", "run", "app.py"] and "8501" in cmd

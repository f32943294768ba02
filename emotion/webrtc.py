"""ICE configuration for the webcam page: none by default, STUN/TURN servers only when configured."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

ICE_ENV = "EMOTION_ICE_SERVERS"
SECRET_KEY = "ice_servers"


class IceConfigError(ValueError):
    """ICE servers given in a shape WebRTC cannot use."""


def _plain(value: Any) -> Any:
    """Streamlit's secrets (AttrDict, tuples) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def parse_ice_servers(value: Any, origin: str) -> list[dict]:
    """RTCIceServer dicts from JSON text, a list or {"iceServers": [...]}; IceConfigError otherwise."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise IceConfigError(
                f"{origin} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno});"
                ' expected e.g. [{"urls": ["stun:stun.example.org:3478"]}]'
            ) from None
    value = _plain(value)
    if isinstance(value, dict) and "iceServers" in value:
        value = value["iceServers"]
    if not isinstance(value, list):
        raise IceConfigError(f"{origin} must be a list of ICE servers, got {type(value).__name__}")
    for i, server in enumerate(value):
        urls = server.get("urls") if isinstance(server, dict) else None
        if not (isinstance(urls, str)
                or (isinstance(urls, list) and urls and all(isinstance(u, str) for u in urls))):
            raise IceConfigError(f'{origin}: server {i} needs "urls", a string or a list of strings')
        for key in ("username", "credential"):
            if key in server and not isinstance(server[key], str):
                raise IceConfigError(f"{origin}: server {i} {key!r} must be a string")
    return value


def rtc_configuration(environ: Mapping[str, str] | None = None, secrets: Any = None) -> dict:
    """The RTCConfiguration: EMOTION_ICE_SERVERS, else secrets["ice_servers"], else no servers at all.

    With no servers the browser and the server pair over their host addresses, which works when
    both are on one machine or one network; say so explicitly, because streamlit-webrtc otherwise
    fills in public STUN servers (a network call this app does not need to make).
    """
    environ = os.environ if environ is None else environ
    if environ.get(ICE_ENV, "").strip():
        return {"iceServers": parse_ice_servers(environ[ICE_ENV], f"${ICE_ENV}")}
    if secrets is not None:
        try:
            value = secrets[SECRET_KEY] if SECRET_KEY in secrets else None
        except (FileNotFoundError, KeyError):
            value = None
        if value is not None:
            return {"iceServers": parse_ice_servers(value, f'secrets["{SECRET_KEY}"]')}
    return {"iceServers": []}


def streamlit_rtc_configuration() -> dict:
    """rtc_configuration() with the app's st.secrets, which may not exist at all."""
    import streamlit as st

    try:
        secrets = st.secrets if SECRET_KEY in st.secrets else None
    except Exception:  # no secrets.toml anywhere: Streamlit raises its own FileNotFoundError type
        secrets = None
    return rtc_configuration(secrets=secrets)

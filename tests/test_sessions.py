"""Webcam sessions kept by the key in the page's address."""

from __future__ import annotations

import pytest

from emotion.app.sessions import LiveSessions, new_key, valid_key


def test_keys_are_random_and_checked():
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(valid_key(k) for k in keys)
    for bad in [None, "", "abc", "../../etc", "G" * 32, 42]:
        assert not valid_key(bad)
    with pytest.raises(ValueError, match="not a session key"):
        LiveSessions().get_or_create("nope", object)


def test_the_same_key_finds_the_same_session_and_old_ones_go():
    now = [0.0]
    sessions = LiveSessions(max_sessions=3, idle_s=60, clock=lambda: now[0])
    a = new_key()
    first = sessions.get_or_create(a, object)
    assert sessions.get_or_create(a, object) is first  # a refresh finds it
    others = [new_key() for _ in range(3)]
    for k in others:
        sessions.get_or_create(k, object)
    assert len(sessions) == 3 and sessions.get_or_create(a, object) is not first  # least recent went
    now[0] = 61.0
    fresh = sessions.get_or_create(new_key(), object)
    assert len(sessions) == 1 and fresh is not None  # idle ones expired


def test_one_session_per_key_under_threads(in_threads):
    sessions = LiveSessions(max_sessions=100)
    keys = [new_key() for _ in range(4)]
    got = in_threads(lambda k: [id(sessions.get_or_create(keys[i % 4], object))
                                for i in range(200)], 8)
    by_key = {}
    for ids in got:
        for i, ident in enumerate(ids):
            by_key.setdefault(i % 4, set()).add(ident)
    assert all(len(v) == 1 for v in by_key.values())

"""The server's one cache budget (``flashviz/app/byte_lru.py``, ``flashviz/app/cached.py``):
sizes counted in bytes, least recently used evicted, one share per session."""

from __future__ import annotations

import threading
import time

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.app.byte_lru import ByteLRU, array_key, deep_bytes
from flashviz.app.cached import mib_setting
from flashviz.figures.context import figure_context
from flashviz.lab.budget import estimate_cost
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec

MIB = 2**20


def _blob(mib: float) -> np.ndarray:
    return np.zeros(int(mib * MIB), dtype=np.uint8)


def test_an_array_is_counted_once_by_its_buffer_however_many_views_hold_it() -> None:
    a = _blob(4)
    alone = deep_bytes(a)
    assert 4 * MIB <= alone < 4 * MIB + 1024
    assert deep_bytes([a, a[::2], a.reshape(2, -1), {"again": a[:10]}]) < alone + 2048
    assert deep_bytes([a, _blob(4)]) > 8 * MIB


def test_a_recorded_problem_and_a_figure_are_counted_as_what_they_hold() -> None:
    spec = ProblemSpec(n_q=96, n_k=80, head_dim=16, block_q=16, block_kv=8)
    context = figure_context(build_trace(spec))
    arrays = context.trace.q.nbytes + context.trace.k.nbytes + context.trace.v.nbytes
    assert arrays < deep_bytes(context) <= estimate_cost(spec).total_bytes
    ys = np.arange(100_000, dtype=float)
    figure = go.Figure(go.Scatter(y=ys), frames=[go.Frame(data=[go.Scatter(y=ys + 1)])])
    assert deep_bytes(figure) >= 2 * ys.nbytes


def test_a_function_or_module_inside_a_value_is_not_walked_into() -> None:
    assert deep_bytes({"f": np.exp, "m": np, "t": ProblemSpec}) < 4096


def test_storing_beyond_the_budget_evicts_the_least_recently_used_of_anyone() -> None:
    cache = ByteLRU(budget=10 * MIB, share=10 * MIB)
    for key, owner in (("a", "s1"), ("b", "s2"), ("c", "s1")):
        cache.store(key, _blob(3), owner)
    assert cache.lookup("a")[0]  # a is now more recent than b
    cache.store("d", _blob(3), "s3")
    assert "b" not in cache and all(k in cache for k in "acd")
    assert cache.total_bytes <= cache.budget


def test_a_session_over_its_share_loses_its_own_oldest_entries_not_others() -> None:
    cache = ByteLRU(budget=20 * MIB, share=7 * MIB)
    cache.store("theirs", _blob(3), "other")
    cache.store("mine 1", _blob(3), "me")
    cache.store("mine 2", _blob(3), "me")
    stored = cache.store("mine 3", _blob(3), "me")
    assert stored.kept and stored.evicted_own == 1
    assert all(k in cache for k in ("theirs", "mine 2", "mine 3")) and "mine 1" not in cache
    assert cache.owner_bytes("me") <= cache.share


def test_a_value_larger_than_the_share_is_returned_but_not_kept() -> None:
    cache = ByteLRU(budget=8 * MIB, share=4 * MIB)
    value, stored = cache.get_or_compute("big", lambda: _blob(5), "me")
    assert value.nbytes == 5 * MIB and stored is not None and not stored.kept
    assert "big" not in cache and cache.total_bytes == 0


@given(
    ops=st.lists(
        st.tuples(st.integers(0, 11), st.integers(0, 3), st.integers(1, 6), st.booleans()),
        max_size=60,
    )
)
def test_the_budget_and_every_share_hold_after_any_sequence(ops: list) -> None:
    cache = ByteLRU(budget=12 * 2**10, share=6 * 2**10)
    last = {}  # key -> the value stored last under it
    for key, owner, kib, look in ops:
        if look:
            hit, value = cache.lookup(key)
            assert not hit or value is last[key]
            continue
        last[key] = np.zeros(kib * 2**10 - 200, np.uint8)
        stored = cache.store(key, last[key], f"s{owner}")
        assert stored.kept == (stored.nbytes <= cache.share)
        if stored.kept:
            assert cache.lookup(key)[0]  # the newest entry survives its own evictions
        assert cache.total_bytes <= cache.budget
        assert all(cache.owner_bytes(f"s{o}") <= cache.share for o in range(4))
        assert cache.total_bytes == sum(cache.owner_bytes(f"s{o}") for o in range(4))


def test_one_computation_per_key_however_many_sessions_ask_at_once() -> None:
    cache = ByteLRU(budget=MIB, share=MIB)
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        time.sleep(0.2)
        return np.zeros(10)

    threads = [
        threading.Thread(target=cache.get_or_compute, args=("k", compute, f"s{i}"))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and "k" in cache


def test_a_failed_computation_is_not_kept_and_runs_again_next_time() -> None:
    cache = ByteLRU(budget=MIB, share=MIB)

    def fail() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("k", fail, "me")
    assert cache.get_or_compute("k", lambda: 5, "me")[0] == 5


def test_array_arguments_are_keyed_by_their_data() -> None:
    a = np.arange(6.0)
    assert array_key(a) == array_key(a.copy())
    assert array_key(a) != array_key(a + 1)
    assert array_key(a) != array_key(a.reshape(2, 3))
    assert array_key(a) != array_key(a.astype(np.float32))


@pytest.mark.parametrize(
    "raw", ["0", "-5", "1e3", "\uff11\uff12", "\u0663", "12 MiB", "0x10", "nan", "9" * 5000]
)
def test_a_bad_budget_setting_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="FLASHVIZ_CACHE_MIB must be a whole number"):
        mib_setting("FLASHVIZ_CACHE_MIB", 1024, {"FLASHVIZ_CACHE_MIB": raw})


def test_the_budget_settings_default_and_read_whole_mib() -> None:
    assert mib_setting("X", 1024, {}) == 1024
    assert mib_setting("X", 1024, {"X": " 2048 "}) == 2048

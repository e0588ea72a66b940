"""A session changing the problem again and again keeps to its share of the server's cache:
its own oldest entries go, it is told once, and nothing else in the cache is touched."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app import cached
from flashviz.app.byte_lru import ByteLRU
from tests.app.test_backward_page import open_page

MIB = 2**20
PROBLEM = {"n_q": 256, "n_k": 256, "head_dim": 64, "block_q": 32, "block_kv": 8}  # ~14 MiB
TOLD = "share of the server's memory is full"


def _toasts(at: AppTest) -> list[str]:
    return [t.value for t in at.toast]


def test_a_session_typing_seeds_keeps_to_its_share_and_is_told_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = ByteLRU(budget=96 * MIB, share=32 * MIB)
    monkeypatch.setattr(cached, "CACHE", cache)
    cache.store("another student's problem", np.zeros(8 * MIB, np.uint8), "someone else")
    at = open_page(**PROBLEM, seed=1)
    told = []
    for seed in range(2, 7):
        at.number_input(key="bwd_seed").set_value(seed).run()
        assert not at.exception
        told += [t for t in _toasts(at) if TOLD in t]
        mine = [o for o in cache._owned if o != "someone else"]
        assert len(mine) == 1 and cache.owner_bytes(mine[0]) <= cache.share
    assert len(told) == 1, told
    assert "another student's problem" in cache
    assert cache.total_bytes <= cache.budget

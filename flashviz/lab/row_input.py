"""One row of scores for the online-softmax debugger: typed, pasted or drawn from a pattern.

``parse_row(text)`` reads numbers separated by commas, semicolons, spaces or new lines
(surrounding brackets, as pasted from Python, are ignored); ``-inf`` marks a masked key.
Every failure raises ``ValueError`` saying what is wrong and where.

``make_row(pattern, n, chunk, seed)`` draws a row on which given mistakes of the bug zoo
bite (``flashviz.lab.bugzoo``); ``DEMO_PATTERN`` names one such pattern for every bug.
``row_values(n, d, seed)`` draws the value vectors v_j of the row's keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from flashviz.core.checks import check_int

MAX_ROW = 4096  # longest row accepted: the page draws one bar per score
MAX_TEXT_CHARS = 32 * MAX_ROW  # longest text accepted: 4096 numbers written with repr()
MAX_TOKEN_SHOWN = 40  # characters of a bad entry quoted in a message

# Linear time: no two adjacent quantifiers can match the same digits (r"\d+\.?\d*" could,
# and backtracked quadratically: 20 s for one 30,000-digit token).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORDS = {"inf": np.inf, "+inf": np.inf, "-inf": -np.inf, "nan": np.nan}
_WORDS |= {w.replace("inf", "infinity"): v for w, v in _WORDS.items() if "inf" in w}
_SEPARATORS = re.compile(r"[\s,;]+")


def _tokens(text: str) -> list[str]:
    text = text.replace("\u2212", "-").strip()  # a pasted minus sign
    if text[:1] in "[(" and text[-1:] in "])":
        text = text[1:-1].strip()
    return [t for t in _SEPARATORS.split(text) if t]


def _shown(token: str, quote: bool = True) -> str:
    """A bad entry as quoted in a message, cut to ``MAX_TOKEN_SHOWN`` characters."""
    cut = token if len(token) <= MAX_TOKEN_SHOWN else token[: MAX_TOKEN_SHOWN - 1] + "\u2026"
    shown = repr(cut) if quote else cut
    return shown if cut == token else f"{shown}, {len(token):,} characters"


def _number(token: str, position: int) -> float:
    word = token.lower()
    if word in _WORDS:
        x = _WORDS[word]
    elif _NUMBER.fullmatch(token):
        x = float(token)
        if not np.isfinite(x):
            raise ValueError(
                f"entry {position} ({_shown(token, quote=False)}) is too large for float64; "
                f"write -inf to mask a key"
            )
    else:
        raise ValueError(f"entry {position} ({_shown(token)}) is not a number")
    if np.isnan(x):
        raise ValueError(f"entry {position} is NaN: a score must be a number, or -inf to mask")
    if x == np.inf:
        raise ValueError(f"entry {position} is +inf: only -inf (a masked key) is allowed")
    return x


def parse_row(text: str, max_len: int = MAX_ROW) -> np.ndarray:
    """Scores (n,) float64 from typed or pasted text; -inf marks a masked key.

    Linear time in the text, which may hold at most ``MAX_TEXT_CHARS`` characters.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(
            f"the text has {len(text):,} characters; at most {MAX_TEXT_CHARS:,} are read "
            f"({max_len} numbers). Upload a .npy row instead."
        )
    tokens = _tokens(text)
    if not tokens:
        raise ValueError("the row is empty: type numbers separated by commas, spaces or lines")
    if len(tokens) > max_len:
        raise ValueError(f"the row has {len(tokens)} numbers; at most {max_len} are allowed")
    return np.array([_number(t, k) for k, t in enumerate(tokens, start=1)], dtype=np.float64)


def format_row(scores: np.ndarray) -> str:
    """The row as text that ``parse_row`` reads back exactly."""
    return ", ".join("-inf" if np.isneginf(x) else repr(float(x)) for x in scores)


# Patterns ---------------------------------------------------------------------------------

ROW_PATTERNS: dict[str, str] = {
    "increasing": "the max rises in every chunk (the rescale mistakes bite at chunk 1)",
    "random": "plain random scores, N(0, 2^2)",
    "large logits": "scores near 1000 (exp overflows without the max subtracted)",
    "masked start": "the first chunks fully masked (-inf), then random scores",
    "masked tail": "very low scores near -6e4, then a masked tail (the -inf stand-ins bite)",
    "empty row": "every key masked: the answer is 0, never NaN",
    "jump of 12": "the scores jump by about 12 after the first chunk (a threshold of 20 keeps "
    "the stale max, and P~ = e^12 overflows float16)",
}
DEMO_PATTERN: dict[str, str] = {
    "no_rescale_o": "increasing",
    "no_rescale_l": "increasing",
    "wrong_sign": "increasing",
    "no_max": "large logits",
    "stale_l": "increasing",
    "mask_1e4": "masked tail",
    "mask_5e4": "masked tail",
    "no_inf_guard": "masked start",
    "threshold_too_high_f16": "jump of 12",
}


def masked_prefix(n: int, chunk: int) -> int:
    """Length of the masked start: whole chunks, about a third of the row, one key left."""
    return min(chunk * max(1, round(n / (3 * chunk))), n - 1)


def masked_tail_start(n: int) -> int:
    """First masked column of the "masked tail" pattern: the last third is masked."""
    return n - max(1, n // 3) if n > 1 else 1


def _increasing(rng: np.random.Generator, n: int, chunk: int) -> np.ndarray:
    # chunk c holds 2c + U(-0.9, 0.9): its max beats every earlier score by at least 0.2
    return 2.0 * (np.arange(n) // chunk) + rng.uniform(-0.9, 0.9, n)


def _random(rng: np.random.Generator, n: int, chunk: int) -> np.ndarray:
    return 2.0 * rng.standard_normal(n)


def _large(rng: np.random.Generator, n: int, chunk: int) -> np.ndarray:
    return 1000.0 + 3.0 * rng.standard_normal(n)


def _masked_start(rng: np.random.Generator, n: int, chunk: int) -> np.ndarray:
    s = _random(rng, n, chunk)
    s[: masked_prefix(n, chunk)] = -np.inf
    return s


def _masked_tail(rng: np.random.Generator, n: int, chunk: int) -> np.ndarray:
    s = -6e4 + 2.0 * rng.standard_normal(n)
    s[masked_tail_start(n) :] = -np.inf
    return s


def _jump(rng: np.random.Generator, n: int, chunk: int) -> np.ndarray:
    # chunk 0 in (-0.5, 0.5), the others 12.5 + (-0.5, 0.5): the max rises by 11.5 to 13.5
    s = rng.uniform(-0.5, 0.5, n)
    s[chunk:] += 12.5
    return s


def _empty(rng: np.random.Generator, n: int, chunk: int) -> np.ndarray:
    return np.full(n, -np.inf)


_MAKERS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "increasing": _increasing,
    "random": _random,
    "large logits": _large,
    "masked start": _masked_start,
    "masked tail": _masked_tail,
    "empty row": _empty,
    "jump of 12": _jump,
}


def make_row(pattern: str, n: int, chunk: int, seed: int) -> np.ndarray:
    """Scores (n,) float64 drawn from ``pattern`` for chunks of ``chunk``, reproducible."""
    if pattern not in _MAKERS:
        raise ValueError(f"pattern must be one of {list(ROW_PATTERNS)}, got {pattern!r}")
    n = check_int("n", n, 1, MAX_ROW)
    chunk = check_int("chunk", chunk, 1)
    seed = check_int("seed", seed, 0)
    return _MAKERS[pattern](np.random.default_rng(seed), n, chunk).astype(np.float64)


def row_values(n: int, d: int, seed: int) -> np.ndarray:
    """Values v (n, d) float64, standard normal, reproducible from ``seed``."""
    n = check_int("n", n, 1, MAX_ROW)
    d = check_int("d", d, 1)
    seed = check_int("seed", seed, 0)
    return np.random.default_rng([seed, 1]).standard_normal((n, d))

"""The input checks every module shares (debias_utils.checks)."""
import numpy as np
import pandas as pd
import pytest

from debias_utils.checks import check_number, check_positive_int, check_texts


def test_check_texts():
    assert check_texts(("a", "b")) == ["a", "b"] and check_texts(pd.Series(["x"])) == ["x"]
    assert check_texts([], allow_empty=True) == []
    with pytest.raises(TypeError, match="not one string; wrap it in a list"):
        check_texts("hello")
    with pytest.raises(ValueError, match="prompts is empty"):
        check_texts([], "prompts")
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        check_texts(["a", None])
    with pytest.raises(ValueError, match=r"neutral\[1\] is blank"):
        check_texts(["a", "  "], "neutral", allow_blank=False)
    with pytest.raises(TypeError, match="got int"):
        check_texts(3)


def test_check_positive_int():
    assert check_positive_int(np.int64(4), "batch_size") == 4
    for bad, error in [(0, ValueError), (-2, ValueError), (1.0, TypeError), (True, TypeError), ("8", TypeError)]:
        with pytest.raises(error, match="batch_size"):
            check_positive_int(bad, "batch_size")


def test_check_number():
    assert check_number(np.float32(0.5), "top_p", 0, 1, low_open=True) == 0.5
    assert check_number(1, "top_p", 0, 1, low_open=True) == 1.0
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 0.0"):
        check_number(0.0, "top_p", 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"horizon must be in \(0, inf\]"):
        check_number(-1, "horizon", 0, low_open=True)
    for bad in (float("nan"), float("inf"), "0.5", None, True):
        with pytest.raises(ValueError, match="must be a finite number"):
            check_number(bad, "clip")

"""A leaking buffer whose findings the conftest forwards (this test is expected to FAIL)."""

import array

import pytest

SAMPLES = []


@pytest.mark.memcheck
def test_sample_buffer_kept():
    SAMPLES.append(array.array("d", [0.0]) * 512)

"""Shared set-up of the training tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_threads():
    """Trainers set ``torch.set_num_threads``; put the process-wide value back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

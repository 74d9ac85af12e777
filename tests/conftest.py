"""Fixtures shared by the training and evaluation tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    # Tiny models gain nothing from a second thread, and OpenMP threads that compete
    # with another busy process slow each step down many times over.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread for a module's tests (``pytest.mark.usefixtures``): the tiny
    models of the tests run fastest, and steadiest on a shared machine, on one thread."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Shared test fixtures."""

import pytest
import torch

from matmcl.tracking import URI_ENV


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's torch code on one thread (tests share 2 cores; small models gain nothing from more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory) -> str:
    """One temporary MLflow store per test session (a fresh sqlite DB migrates for seconds), set as
    $MLFLOW_TRACKING_URI so that every tracked stage logs there, in-process or in a subprocess (dvc repro)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(URI_ENV, uri)
        yield uri

"""The training tests' fixture: a tiny Llama whose tokenizer was trained on the task corpus (built once per
module)."""

from __future__ import annotations

import pytest
from trainkit import TASK_CORPUS


@pytest.fixture(scope="module")
def task_model(tmp_path_factory):
    pytest.importorskip("torch")
    from tinymodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("task-model"), corpus=TASK_CORPUS)

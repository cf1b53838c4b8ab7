import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from hsir.tasks import default_data_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = default_data_dir()
    if not (d / "gsm8k").is_dir():
        pytest.skip(f"real data folder {d} is absent (set HSIR_DATA_DIR)")
    return d


@pytest.fixture(scope="session")
def smoke_model():
    from hsir.models import load_model

    return load_model("smoke:tiny-llama", dtype="fp32", device="cpu")


@pytest.fixture(scope="session")
def embedded_model():
    from hsir.models import load_model

    return load_model("embedded:smollm2-135m", dtype="fp32", device="cpu")

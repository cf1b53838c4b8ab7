"""``python -m hsir.bench generate``'s time split: the seconds of vLLM's functions, found by file and name, add up
to the parts it reports, and a vLLM whose functions moved gives no split rather than a wrong one."""

import importlib.util
import sys
import time

from hsir.bench.generate import time_split

# stand-ins for vLLM's files, each function sleeping a known time (cProfile times the wall clock)
FILES = {
    "cpu_attn.py": "import time\ndef forward():\n    time.sleep(0.10)\n",
    "llama.py": "import time\ndef compute_logits():\n    time.sleep(0.05)\n",
    "gpu_model_runner.py": ("import time\nimport cpu_attn\n"
                            "def _model_forward():\n    time.sleep(0.20)\n    cpu_attn.forward()\n"
                            "def sample_tokens():\n    time.sleep(0.08)\n"),
}


def load(tmp_path, monkeypatch, files):
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in files:  # gpu_model_runner imports cpu_attn by name: none may outlive the test
        monkeypatch.delitem(sys.modules, name[:-3], raising=False)
    mods = {}
    for name in files:
        spec = importlib.util.spec_from_file_location(name[:-3], tmp_path / name)
        mods[name[:-3]] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mods[name[:-3]])
    return mods


def test_the_split_adds_up_to_the_parts_vllms_functions_took(tmp_path, monkeypatch):
    m = load(tmp_path, monkeypatch, FILES)

    def call():
        m["gpu_model_runner"]._model_forward()
        m["llama"].compute_logits()
        m["gpu_model_runner"].sample_tokens()
        time.sleep(0.03)  # scheduling and the rest

    split = time_split(call)
    assert abs(split["layers_without_attention"] - 0.20) < 0.04 and abs(split["attention"] - 0.10) < 0.04
    assert abs(split["logits"] - 0.05) < 0.04 and abs(split["sampler"] - 0.08) < 0.04
    assert abs(split["rest"] - 0.03) < 0.04
    parts = sum(v for k, v in split.items() if k != "total")
    assert abs(parts - split["total"]) < 0.035  # six values rounded to 0.01 each


def test_no_split_where_a_function_is_not_found(tmp_path, monkeypatch):
    m = load(tmp_path, monkeypatch, {k: v for k, v in FILES.items() if k != "llama.py"})
    assert time_split(lambda: m["gpu_model_runner"]._model_forward()) is None

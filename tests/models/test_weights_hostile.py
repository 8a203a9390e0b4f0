"""A weights file is untrusted: keys that are not strings, sparse / meta / complex / non-numeric tensors and integer
tensors where the model has floating ones are one ``WeightsError`` naming the file, never a raw torch error or a
silent loss (a complex weight's imaginary part dropped)."""

from __future__ import annotations

import pytest
import torch
from helpers import TinyNet

from harness.errors import WeightsError
from harness.models.weights import load_exactly, read_state_dict


def _file(tmp_path, state) -> object:
    path = tmp_path / "w.pt"
    torch.save(state, path)
    return path


def _state() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in TinyNet().state_dict().items()}


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: {i: v for i, v in enumerate(s.values())}, r"keys 0, 1, 2 are not strings; not a state dict"),
    (lambda s: {**s, 3: torch.zeros(1)}, r"keys 3 are not strings"),
    (lambda s: {**s, "fc.weight": s["fc.weight"].to_sparse()}, r"tensor 'fc.weight' is sparse"),
    (lambda s: {**s, "fc.bias": torch.zeros(10, device="meta")}, r"tensor 'fc.bias' is on the meta device"),
    (lambda s: {**s, "fc.bias": torch.zeros(10, dtype=torch.complex64)}, r"tensor 'fc.bias' is of dtype complex64"),
    (lambda s: {**s, "fc.bias": torch.zeros(10, dtype=torch.complex128)}, r"of dtype complex128"),
    (lambda s: {**s, "fc.weight": "x"}, r"entries fc.weight are not tensors"),
])
def test_a_bad_weights_file_is_one_weights_error_naming_it(tmp_path, change, message):
    path = _file(tmp_path, change(_state()))
    with pytest.raises(WeightsError, match=message) as err:
        read_state_dict(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_integer_tensors_where_the_model_has_floating_ones_are_refused(tmp_path):
    state = _state()
    state["fc.weight"] = state["fc.weight"].to(torch.int64)
    path = _file(tmp_path, state)
    fmt, loaded = read_state_dict(path)  # an integer tensor may be a counter: judged against the model
    with pytest.raises(WeightsError, match=r"w.pt: 1 tensors are not floating point where the model's are "
                                           r"\(fc.weight torch.int64\)"):
        load_exactly(TinyNet(), loaded, where=str(path))


def test_a_good_file_still_loads(tmp_path):
    state = _state()
    fmt, loaded = read_state_dict(_file(tmp_path, state))
    model = TinyNet()
    load_exactly(model, loaded, where="w.pt")
    assert torch.equal(model.fc.weight, state["fc.weight"])

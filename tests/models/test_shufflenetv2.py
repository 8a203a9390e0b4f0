"""ShuffleNetV2 (+ SE, + SK): torchvision equality, hand-computed MACs, the search's defaults against [P] Table 4,
option errors and the numbers quoted in prose."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import harness
from harness.errors import ConfigError
from harness.measure.macs import count_macs
from harness.measure.params import count_params
from harness.models import shufflenetv2 as sn
from harness.models.registry import get_entry, list_models
from harness.models.se import SqueezeExcite
from harness.models.sk import SelectiveKernel
from harness.paper import all_rows

ROOT = Path(__file__).resolve().parents[2]
TORCHVISION = {"shufflenetv2_050": "shufflenet_v2_x0_5", "shufflenetv2_100": "shufflenet_v2_x1_0"}
T4 = {row.row: row for row in all_rows() if row.table == "P Table 4"}
# What the defaults build (pinned: a change of a default must be a deliberate change of these numbers).
BUILT_PARAMS = {
    "shufflenetv2_050": 1_366_792, "shufflenetv2_050_se": 1_514_324, "shufflenetv2_050_sk": 1_453_360,
    "shufflenetv2_100": 2_278_604, "shufflenetv2_100_se": 2_496_164, "shufflenetv2_100_sk": 2_483_696,
}
BUILT_MACS = {
    "shufflenetv2_050": 42_524_256, "shufflenetv2_050_se": 42_669_728, "shufflenetv2_050_sk": 44_824_464,
    "shufflenetv2_100": 148_808_392, "shufflenetv2_100_se": 149_022_520, "shufflenetv2_100_sk": 154_070_272,
}

# fvcore's conv + fc MACs and BN MACs of the plain nets (quoted in the Table 4 notes; asserted in a slow test)
CONV_FC_MACS = {"shufflenetv2_050": 40_476_448, "shufflenetv2_100": 144_907_992}
BN_MACS = {"shufflenetv2_050": 2_047_808, "shufflenetv2_100": 3_900_400}


def _torchvision(name: str) -> nn.Module:
    return getattr(torchvision.models, TORCHVISION[name])()


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_plain_nets_have_torchvisions_parameter_count(name):
    assert count_params(harness.create_model(name)).params == count_params(_torchvision(name)).params
    assert count_params(harness.create_model(name)).params == BUILT_PARAMS[name]


def test_plain_050_has_torchvisions_fvcore_macs():
    ours, theirs = harness.create_model("shufflenetv2_050"), _torchvision("shufflenetv2_050")
    assert count_macs(ours, input_size=(3, 224, 224)).macs == count_macs(theirs, input_size=(3, 224, 224)).macs


@pytest.mark.slow
def test_plain_100_has_torchvisions_fvcore_macs():
    ours, theirs = harness.create_model("shufflenetv2_100"), _torchvision("shufflenetv2_100")
    assert count_macs(ours, input_size=(3, 224, 224)).macs == count_macs(theirs, input_size=(3, 224, 224)).macs


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_plain_nets_conv_fc_and_bn_macs_are_the_pinned_ones(name):
    ops = count_macs(harness.create_model(name), input_size=(3, 224, 224)).by_operator
    assert ops["conv"] + ops["linear"] == CONV_FC_MACS[name]
    assert ops["batch_norm"] == BN_MACS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_plain_nets_compute_torchvisions_function_given_its_weights(name):
    ours, theirs = harness.create_model(name), _torchvision(name)
    torch.manual_seed(0)
    for p in theirs.parameters():  # non-trivial weights and BN statistics, so the test can fail
        p.data.normal_(0, 0.1)
    for m in theirs.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    mine, tv = ours.state_dict(), theirs.state_dict()
    assert [v.shape for v in mine.values()] == [v.shape for v in tv.values()]  # same layers, same order
    ours.load_state_dict(dict(zip(mine, tv.values(), strict=True)))
    x = torch.randn(2, 3, 64, 64)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        expected = theirs(x)
        assert torch.allclose(ours(x), expected, atol=1e-5)
    with torch.inference_mode():  # the BN-folded path
        assert torch.allclose(ours(x), expected, atol=1e-4)


def test_stride1_unit_macs_match_the_formula():
    c, h, w = 48, 14, 14
    half = c // 2
    unit = sn.ShuffleUnit(c, c, stride=1, dw=sn.depthwise, proj_dw=sn.depthwise)
    # two 1×1 convs and a 3×3 depthwise conv on half the channels, three BNs at 2 per element (fvcore)
    expected = h * w * (2 * half * half + 9 * half) + 3 * 2 * half * h * w
    assert count_macs(unit, input_size=(c, h, w)).macs == expected


def test_stride2_unit_macs_match_the_formula():
    cin, cout, h, w = 24, 48, 28, 28
    half, ho, wo = cout // 2, h // 2, w // 2
    unit = sn.ShuffleUnit(cin, cout, stride=2, dw=sn.depthwise, proj_dw=sn.depthwise)
    proj = ho * wo * (9 * cin + cin * half) + 2 * (cin + half) * ho * wo
    branch = h * w * cin * half + 2 * half * h * w + ho * wo * (9 * half + half * half) + 2 * 2 * half * ho * wo
    assert count_macs(unit, input_size=(cin, h, w)).macs == proj + branch


def test_channel_shuffle_interleaves_the_two_halves():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert sn.channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_sk_replaces_every_depthwise_conv_with_depthwise_branches():
    model = harness.create_model("shufflenetv2_050_sk")
    sks = [m for m in model.modules() if isinstance(m, SelectiveKernel)]
    assert len(sks) == 16 + 3  # each unit's branch, and the projection of the three stride-2 units
    for sk in sks:
        assert [p[0].groups for p in sk.paths] == [sk.channels, sk.channels]  # depthwise
        assert [p[0].dilation for p in sk.paths] == [(1, 1), (2, 2)]
        assert sk.fc_reduce[0].out_channels == max(sk.channels // 16, 24)
    branch_only = harness.create_model("shufflenetv2_050_sk", sk_proj=False)
    assert _count(branch_only, SelectiveKernel) == 16


def test_se_sits_on_every_units_branch_and_on_the_head():
    model = harness.create_model("shufflenetv2_050_se")
    assert _count(model, SqueezeExcite) == 16 + 1
    assert model.head_attention.fc1.out_channels == 1024 // 16
    unit = model.stages[1][1]
    assert unit.branch_attention.fc1.in_channels == 48 and unit.branch_attention.fc1.out_channels == 48 // 8
    whole = harness.create_model("shufflenetv2_050_se", se_position="unit", head_r=None)
    assert _count(whole, SqueezeExcite) == 16
    assert whole.stages[1][1].unit_attention.fc1.in_channels == 96


def test_cifar_stem_keeps_32px_inputs_at_16px_in_the_first_stage():
    model = harness.create_model("shufflenetv2_050_sk", stem="cifar", num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert model.stages[0](model.stem(x)).shape[-2:] == (16, 16)
        assert model(x).shape == (2, 10)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("shufflenetv2_050_se", {"se_position": "dw"}, "se_position='dw' is not one of branch, unit"),
        ("shufflenetv2_050", {"stem": "tiny"}, "stem='tiny' is not one of imagenet, cifar"),
        ("shufflenetv2_050", {"stage_repeats": [4, 8]}, "stage_repeats=[4, 8] needs 3 positive integers"),
        ("shufflenetv2_050", {"width": 0}, "width=0.0 must be positive"),  # coerced to the annotated float
        ("shufflenetv2_050_sk", {"group_width": 5}, "group_width=5 does not divide 24 channels"),
        ("shufflenetv2_050_se", {"r": 0}, "r=0 must be a positive integer"),
    ],
)
def test_bad_options_are_one_line_config_errors(name, options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        harness.create_model(name, **options)


def test_registry_names_family_and_plain_counterparts():
    names = list_models("shufflenetv2_*")
    assert names == sorted(BUILT_PARAMS)
    for name in names:
        entry = get_entry(name)
        assert entry.family == "shufflenet" and entry.paper_table == "P Table 4"
        assert entry.plain == (None if name in TORCHVISION else name.rsplit("_", 1)[0])


@pytest.mark.parametrize("name", sorted(BUILT_PARAMS))
def test_defaults_build_the_pinned_parameter_counts(name):
    assert count_params(harness.create_model(name)).params == BUILT_PARAMS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILT_MACS))
def test_defaults_build_the_pinned_fvcore_macs(name):
    assert count_macs(harness.create_model(name), input_size=(3, 224, 224)).macs == BUILT_MACS[name]


def _paper(size: str, kind: str):
    label = {"050": "0.5×", "100": "1.0×"}[size]
    return T4[f"ShuffleNetV2 {label} " + {"plain": "(our impl.)", "se": "+ SE", "sk": "+ SK"}[kind]]


@pytest.mark.parametrize("size", ["050", "100"])
@pytest.mark.parametrize("kind", ["se", "sk"])
def test_attention_adds_what_the_papers_attention_adds_within_tolerance(size, kind):
    """[P]'s plain row + what our SE / SK adds lands within the report's tolerance of [P]'s SE / SK row."""
    plain, row = _paper(size, "plain"), _paper(size, kind)
    added = (BUILT_PARAMS[f"shufflenetv2_{size}_{kind}"] - BUILT_PARAMS[f"shufflenetv2_{size}"]) / 1e6
    added_macs = (BUILT_MACS[f"shufflenetv2_{size}_{kind}"] - BUILT_MACS[f"shufflenetv2_{size}"]) / 1e9
    assert abs((plain.params_m + added) / row.params_m - 1) <= 0.01
    assert abs((plain.gmacs + added_macs) / row.gmacs - 1) <= 0.015


@pytest.mark.parametrize(("size", "kind", "literal"), [
    ("050", "se", {"r": 16, "head_r": None}), ("100", "se", {"r": 16, "head_r": None}),
    ("100", "sk", {"L": 32}),
])
def test_the_literal_reading_misses_the_papers_parameter_counts(size, kind, literal):
    """Why the defaults depart from SENet's r = 16 without a head SE and SKNet's L = 32 (see Deviations)."""
    plain, row = _paper(size, "plain"), _paper(size, kind)
    base = BUILT_PARAMS[f"shufflenetv2_{size}"]
    added = (count_params(harness.create_model(f"shufflenetv2_{size}_{kind}", **literal)).params - base) / 1e6
    assert abs((plain.params_m + added) / row.params_m - 1) > 0.01


def test_plain_nets_miss_the_our_impl_rows_as_documented():
    for size in ("050", "100"):
        row = _paper(size, "plain")
        assert BUILT_PARAMS[f"shufflenetv2_{size}"] / 1e6 < row.params_m * 0.99  # more #P in [P] …
        assert BUILT_MACS[f"shufflenetv2_{size}"] / 1e9 > row.gmacs * 1.015  # … and fewer MFLOPs


def _search_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("shufflenet_search", ROOT / "benchmarks" / "shufflenet_search.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_search_script_reads_the_six_targets_and_has_the_defaults_in_its_space(monkeypatch):
    search = _search_module(monkeypatch)
    targets = search.paper_targets()
    assert targets[("050", "sk")] == (1.48e6, pytest.approx(42.58e6))
    assert len(targets) == 6
    defaults = {"se": {"se_position": sn.SE_POSITION, "r": sn.SE_R, "head_r": sn.SE_HEAD_R},
                "sk": {"branches": list(sn.SK_BRANCHES), "r": sn.SK_R, "L": sn.SK_L, "sk_proj": sn.SK_PROJ,
                       "group_width": 1}}
    for kind, space in (("se", search.se_space()), ("sk", search.sk_space())):
        assert [c.options for c in space].count(defaults[kind]) == 1, kind  # the defaults are in the space


def _quoted(text: str) -> list[str]:
    """Numbers with two decimals, except percentages and search scores."""
    found = []
    for m in re.finditer(r"(?<![\d.])(\d+\.\d\d)(?![\d%])", text):
        if not re.search(r"score\s*$", text[max(0, m.start() - 8):m.start()]):
            found.append(m.group(1))
    return found


def _matches(quoted: str, values: set[float]) -> bool:
    return any(round(v, 2) == float(quoted) for v in values)


def _published_and_built() -> set[float]:
    values = {r.params_m for r in T4.values()} | {r.gmacs * 1000 for r in T4.values()}
    values |= {v / 1e6 for counts in (BUILT_PARAMS, BUILT_MACS, CONV_FC_MACS, BN_MACS) for v in counts.values()}
    for size in ("050", "100"):
        for kind in ("se", "sk"):  # what SE / SK add, printed and built
            plain, row = _paper(size, "plain"), _paper(size, kind)
            values |= {row.params_m - plain.params_m, (row.gmacs - plain.gmacs) * 1000}
            for built in (BUILT_PARAMS, BUILT_MACS):
                values.add((built[f"shufflenetv2_{size}_{kind}"] - built[f"shufflenetv2_{size}"]) / 1e6)
    return values


def test_table4_notes_quote_published_or_built_numbers():
    known = _published_and_built()
    quoted = [q for row in T4.values() for q in _quoted(row.note)]
    assert len(quoted) >= 20, "nothing quoted: the test would prove nothing"
    assert [q for q in quoted if not _matches(q, known)] == []


def test_registry_descriptions_quote_published_or_built_numbers():
    known = _published_and_built()
    for name in BUILT_PARAMS:
        quoted = _quoted(get_entry(name).description)
        assert len(quoted) == 4, name
        assert all(_matches(q, known) for q in quoted), (name, quoted)


def _variant_counts() -> set[float]:
    """#P, fvcore MMACs, conv + fc MMACs and BN MMACs of the variants the docstring quotes."""
    variants = [
        ("shufflenetv2_050", {}), ("shufflenetv2_100", {}),
        ("shufflenetv2_100", {"stage_repeats": [3, 7, 3], "head_channels": 1280}),
        ("shufflenetv2_050", {"stage_channels": [46, 92, 184], "head_channels": 1072}),
        ("shufflenetv2_100", {"stage_channels": [110, 220, 440], "head_channels": 1216}),
        ("shufflenetv2_050", {"stage_repeats": [4, 6, 6]}), ("shufflenetv2_100", {"stage_repeats": [4, 6, 6]}),
    ]
    values = set()
    for name, options in variants:
        model = harness.create_model(name, **options)
        macs = count_macs(model, input_size=(3, 224, 224))
        ops = macs.by_operator
        values |= {count_params(model).params / 1e6, macs.macs / 1e6,
                   (ops["conv"] + ops["linear"]) / 1e6, ops["batch_norm"] / 1e6}
    for size, options in (("100", {"L": 32}), ("100", {"L": 32, "sk_proj": False})):
        added = count_params(harness.create_model(f"shufflenetv2_{size}_sk", **options)).params
        values.add((added - BUILT_PARAMS[f"shufflenetv2_{size}"]) / 1e6)
    return values


@pytest.mark.slow
def test_module_docstring_quotes_published_or_built_numbers():
    known = _published_and_built() | _variant_counts()
    quoted = _quoted(sn.__doc__)
    assert len(quoted) > 30, "nothing quoted: the test would prove nothing"
    assert [q for q in quoted if not _matches(q, known)] == []


def test_search_ranks_within_tolerance_by_fewest_departures_then_score(monkeypatch):
    search = _search_module(monkeypatch)
    cands = [search.Candidate("sk", name, {}, departures, score=score)
             for name, departures, score in [("outside", 0, 1.3), ("close, 2 departures", 2, 0.5),
                                             ("inside, 1 departure", 1, 0.95), ("far", 0, 4.0)]]
    assert [c.label for c in search.rank(cands)] == ["inside, 1 departure", "close, 2 departures", "outside", "far"]


def _overhead_module(monkeypatch):
    path = ROOT / "benchmarks" / "lightweight_overhead.py"
    spec = importlib.util.spec_from_file_location("lightweight_overhead", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_overhead_table_divides_each_attention_model_by_its_plain_net(tmp_path, monkeypatch):
    from helpers import write_run

    from harness.models.registry import canonical_options

    def latency(model, samples):
        # timed together: one pairing, sample i in cycle i
        return {"task_id": f"latency:{model}", "kind": "latency", "status": "ok", "model": model, "label": model,
                "options": {}, "canonical_options": canonical_options(model, {}), "batch_size": 1, "round": 0,
                "threads": 1, "samples_ms": samples, "cycles": list(range(len(samples))), "pairing": "p1"}

    def complexity(model, macs):
        return {"task_id": f"complexity:{model}", "kind": "complexity", "status": "ok", "model": model,
                "label": model, "options": {}, "batch_size": 1, "macs": macs, "params": 1, "input_size": [3, 224, 224]}

    plain = [10.0, 20.0, 10.0, 11.0, 9.0, 10.0]
    sk = [15.0, 30.0, 15.0, 16.5, 13.5, 30.0]  # 1.5x in every cycle but the last (3x)
    records = [complexity("shufflenetv2_050", 40_000_000), complexity("shufflenetv2_050_sk", 42_000_000),
               latency("shufflenetv2_050", plain), latency("shufflenetv2_050_sk", sk)]
    run = write_run(tmp_path / "lightweight_cpu" / "r1", records)
    (row,) = _overhead_module(monkeypatch).rows(run)
    assert row[:3] == ["shufflenetv2_050_sk", "1", "1"]
    assert row[5].startswith("**1.500**")  # paired: the ratio of the fastest iterations (pooled medians would say 1.55)
    assert row[6] == "6"  # paired over six cycles
    assert row[7] == "–"  # no throughput records
    assert row[8] == "1.050"  # MACs ratio

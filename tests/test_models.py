"""Model registry: every model file composes with its default dataset, counts its full-size parameters on
the meta device, builds as a tiny variant and runs one inference; decode phase, dtypes, placement, user
models and the pretrained-offline error."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import compose, group_options

from ngbench.errors import UserError
from ngbench.models import build_bundle, full_size_param_count, placement
from ngbench.models.hf_common import build_meta

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
PAPER_MODELS = ["vit_b16", "vit_l16", "vit_h14", "swin_t", "swin_s", "swin_b", "faster_rcnn", "mask_rcnn", "detr",
                "maskformer", "segformer", "gpt2", "gpt2_large", "gpt2_xl", "llama2", "bert", "mixtral"]
MODELS = group_options("model")   # every model file is tested; a new one needs no edit here
DEFAULT_DATASET = {"image-classification": "imagenet", "object-detection": "coco",
                   "image-segmentation": "coco", "nlp": "wikitext"}
SLOW = {"faster_rcnn", "mask_rcnn", "maskformer", "detr"}  # full ResNet-50 / high-resolution inputs on CPU
TINY = "model.overrides=${model.tiny}"


def outputs_of(bundle):
    with torch.no_grad():
        out = bundle()
    return list(out) if isinstance(out, tuple | list) else [out]


def tensors_in(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from tensors_in(item)


def test_registry_has_the_papers_models_and_llama3():
    assert set(PAPER_MODELS) | {"llama3"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.slow
def test_model_file_composes_with_its_default_dataset(name):
    cfg = compose(f"model={name}")
    model = cfg.model
    assert model.name == name
    assert cfg.dataset.name == DEFAULT_DATASET[model.task]
    assert model.weights == "random" and dict(model.overrides) == {} and model.tiny
    assert model.hub_id and int(model.params_published) > 0 and model.builder.startswith("ngbench.models.")
    if "config_class" in model:  # transformers models
        assert "attn_implementation" in model and model.config
    if model.task == "nlp":
        assert model.phase == "prefill" and int(model.seq_len) > 0


@pytest.mark.slow
def test_command_line_dataset_wins_over_the_model_default():
    assert compose("model=detr", "dataset=imagenet").dataset.name == "imagenet"
    assert compose().dataset.name == "wikitext"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.slow
def test_full_size_param_count_matches_published(name):
    cfg = compose(f"model={name}")
    count = full_size_param_count(cfg.model)
    assert count == pytest.approx(int(cfg.model.params_published), rel=0.02)


@pytest.mark.slow
def test_full_size_model_is_built_on_meta_only():
    model = build_meta(compose("model=llama3").model)
    assert all(p.is_meta for p in model.parameters())
    assert next(model.model.rotary_emb.buffers()).device.type == "cpu"  # buffers are real and small


@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in MODELS])
@pytest.mark.slow
def test_tiny_model_runs_one_inference(name):
    cfg = compose(f"model={name}", TINY, "batch_size=2")
    bundle = build_bundle(cfg, "cpu", torch.float32)
    outputs = outputs_of(bundle)
    assert bundle.task == cfg.model.task and bundle.param_count > 0
    assert bundle.input_names and bundle.output_names
    assert bundle.facts["params_published"] == int(cfg.model.params_published)
    if isinstance(outputs[0], dict):  # torchvision detectors: one dict per image
        assert len(outputs) == 2 and set(bundle.output_names) <= set(outputs[0])
        assert all(len(o["boxes"]) > 0 for o in outputs)
    else:
        assert len(outputs) == len(bundle.output_names)
        assert all(torch.isfinite(o).all() for o in outputs)


@pytest.mark.parametrize("name", ["gpt2", "llama2"])
@pytest.mark.slow
def test_decode_step_matches_full_forward_and_repeats(name):
    cfg = compose(f"model={name}", TINY, "model.phase=decode", "model.seq_len=12", "batch_size=2")
    bundle = build_bundle(cfg, "cpu", torch.float32)
    next_token, mask, *past = bundle.args
    assert bundle.facts["kv_cache_len"] == 12 and next_token.shape == (2, 1) and mask.shape == (2, 13)
    assert len(bundle.input_names) == 2 + len(past) and bundle.input_names[2] == "past_key_0"
    first, second = outputs_of(bundle)[0], outputs_of(bundle)[0]
    assert torch.equal(first, second) and all(p.shape[-2] == 12 for p in past)  # cache does not grow
    prompt = build_bundle(compose(f"model={name}", TINY, "model.seq_len=12", "batch_size=2"), "cpu",
                          torch.float32)
    ids = torch.cat([prompt.kwargs["input_ids"], next_token], dim=1)
    with torch.no_grad():
        full = prompt.model.model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, -1:]
    torch.testing.assert_close(first, full, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,dtype", [("gpt2", torch.bfloat16), ("vit_b16", torch.bfloat16),
                                        ("llama2", torch.float16), ("segformer", torch.float16),
                                        ("maskformer", torch.bfloat16)])
@pytest.mark.slow
def test_dtype_and_device_are_honoured(name, dtype):
    bundle = build_bundle(compose(f"model={name}", TINY), "cpu", dtype)
    assert {p.dtype for p in bundle.model.parameters()} == {dtype}
    inputs = list(tensors_in((bundle.args, bundle.kwargs)))
    assert all(t.device.type == "cpu" for t in inputs)
    assert all(t.dtype == dtype for t in inputs if t.is_floating_point())
    assert all(torch.isfinite(o).all() for o in outputs_of(bundle))


@pytest.mark.slow
def test_precision_names_are_accepted():
    bundle = build_bundle(compose("model=bert", TINY), "cpu", "bf16")
    assert next(bundle.model.parameters()).dtype == torch.bfloat16


@pytest.mark.slow
def test_random_weights_are_deterministic_and_sane():
    first = build_bundle(compose("model=llama2", TINY), "cpu", torch.float32)
    second = build_bundle(compose("model=llama2", TINY), "cpu", torch.float32)
    other = build_bundle(compose("model=llama2", TINY, "seed=1"), "cpu", torch.float32)
    weights = dict(first.model.named_parameters())
    assert all(torch.equal(weights[n], p) for n, p in second.model.named_parameters())
    assert not torch.equal(weights["model.model.layers.0.mlp.up_proj.weight"],
                           dict(other.model.named_parameters())["model.model.layers.0.mlp.up_proj.weight"])
    norm = weights["model.model.layers.0.input_layernorm.weight"]
    assert torch.equal(norm, torch.ones_like(norm))
    assert math.isclose(weights["model.model.layers.0.mlp.up_proj.weight"].std().item(), 0.02, rel_tol=0.1)


def test_big_cpu_tensors_fill_in_parallel_chunks_deterministically(monkeypatch):
    from ngbench.models import weights

    monkeypatch.setattr(weights, "CPU_CHUNK", 1000)
    tensors = []
    for threads in (1, 2):
        monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
        torch.manual_seed(5)
        tensors.append(torch.empty(10_500, dtype=torch.float16))
        weights.fill_normal(tensors[-1], 0.02)
    assert torch.equal(tensors[0], tensors[1]) and tensors[0].float().std().item() == pytest.approx(0.02, rel=0.1)
    assert not torch.equal(tensors[0][:1000], tensors[0][1000:2000])  # chunks are not copies of each other


@pytest.mark.slow
def test_tied_weights_stay_tied():
    bundle = build_bundle(compose("model=gpt2", TINY), "cpu", torch.float32)
    inner = bundle.model.model
    assert inner.lm_head.weight is inner.transformer.wte.weight


@pytest.mark.slow
def test_placement_spreads_blocks_and_keeps_results():
    layers = "++model.overrides={n_layer: 4, n_embd: 64, n_head: 2, vocab_size: 1024, eos_token_id: 1, bos_token_id: 1}"
    plain_bundle = build_bundle(compose("model=gpt2", layers), "cpu", torch.float32)
    spread = build_bundle(compose("model=gpt2", layers, "+platform.devices=[cpu,cpu]"), "cpu", torch.float32)
    assert spread.placement["model.transformer.h.3"] == "cpu" and "model.lm_head" in spread.placement
    assert spread.facts["placement"] == spread.placement
    torch.testing.assert_close(outputs_of(spread)[0], outputs_of(plain_bundle)[0])


def test_placement_plan_on_meta_splits_contiguously():
    model = build_meta(compose("model=llama2").model)
    plan = placement.plan(model, ["cuda:0", "cuda:1"])
    blocks = [plan[f"model.layers.{i}"] for i in range(32)]
    assert blocks == ["cuda:0"] * 16 + ["cuda:1"] * 16
    assert plan[""] == "cuda:0" and plan["lm_head"] == "cuda:1" and plan["model.norm"] == "cuda:1"
    lookup = placement.device_lookup(plan, "cuda:0")
    assert lookup("model.embed_tokens") == "cuda:0" and lookup("model.layers.20.mlp.up_proj") == "cuda:1"


@pytest.mark.parametrize("name,expected", [("my_encoder", "wikitext"), ("toy_cnn", "imagenet")])
def test_user_models_from_the_examples(name, expected, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    cfg = compose(f"hydra.searchpath=[file://{EXAMPLES}]", f"model={name}", "batch_size=2")
    bundle = build_bundle(cfg, "cpu", torch.float32)
    out = outputs_of(bundle)[0]
    assert cfg.dataset.name == expected and bundle.param_count > 0 and out.shape[0] == 2


@pytest.mark.parametrize("name", ["gpt2", "vit_b16"])
def test_pretrained_without_network_is_a_user_error(name, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub_id = f"ngbench-offline-test/{name}"  # never in a local cache, so the hub would be needed
    cfg = compose(f"model={name}", "model.weights=pretrained", f"model.hub_id={hub_id}")
    with pytest.raises(UserError, match=f"model '{name}': cannot load pretrained weights from '{hub_id}'"):
        build_bundle(cfg, "cpu", torch.float32)


@pytest.mark.parametrize("name", ["gpt2", "detr"])
@pytest.mark.slow
def test_pretrained_from_a_local_path_loads_those_weights(name, tmp_path):
    random = build_bundle(compose(f"model={name}", TINY), "cpu", torch.float32)
    random.model.model.save_pretrained(tmp_path)
    loaded = build_bundle(compose(f"model={name}", "model.weights=pretrained", f"model.path={tmp_path}"), "cpu",
                          torch.float32)
    assert loaded.facts["weights"] == "pretrained" and loaded.param_count == random.param_count
    for ours, theirs in zip(outputs_of(random), outputs_of(loaded), strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.slow
def test_pretrained_torchvision_from_a_missing_path_is_a_user_error(tmp_path):
    cfg = compose("model=faster_rcnn", "model.weights=pretrained", f"model.path={tmp_path}/none.pth")
    with pytest.raises(UserError, match="none.pth"):
        build_bundle(cfg, "cpu", torch.float32)


@pytest.mark.parametrize("overrides,message", [
    (["model=gpt2", "model.builder=ngbench.models.nope.build"], "cannot import module 'ngbench.models.nope'"),
    (["model=gpt2", "model.phase=decode", "model.seq_len=null"], "phase=decode needs model.seq_len"),
    (["model=gpt2", "model.seq_len=4096"], "seq_len=4096 is out of range"),
    (["model=vit_b16", "dataset=wikitext"], "holds no images"),
])
@pytest.mark.slow
def test_bad_model_settings_are_user_errors(overrides, message):
    with pytest.raises(UserError, match=message):
        build_bundle(compose(*overrides, TINY), "cpu", torch.float32)


def test_natural_text_lengths_are_padded_with_a_mask():
    bundle = build_bundle(compose("model=bert", TINY, "model.seq_len=null", "batch_size=3"), "cpu", torch.float32)
    mask = bundle.kwargs["attention_mask"]
    lengths = mask.sum(dim=1)
    assert mask.shape == bundle.kwargs["input_ids"].shape and len(set(lengths.tolist())) > 1
    assert bundle.facts["seq_len"] == int(lengths.max())

"""Module internals under the reference's names: for every model class of the registry, the reference's module tree
and the public attributes of each of its modules, compared with ours on the same tiny config.

User code hooks, patches and inspects submodules (`layer.attention.self.num_attention_heads`, the `dropout` module,
`intermediate.intermediate_act_fn`), so every attribute the reference has is expected on ours under the same name,
with the same kind: a submodule where it has a submodule (of the same class when that is a torch.nn class), a
number, string, flag or None where it has one. Whatever ours lack must be explained by an entry of EXCEPTIONS (a
pattern and its reason), and every entry must still explain something. The references of the models later releases changed (FlauBERT, Transformer-XL, RetriBERT)
are walked in their own interpreters, one subprocess per interpreter.
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch

from leanformers.auto import REGISTRY, _import, module_path

from tests.parity.legacy import LEGACY_PYTHON, REF434_PYTHON, run_legacy

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, pad_token_id=0)
GPT = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0)
BART = dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64)
XLM = dict(vocab_size=61, emb_dim=32, n_layers=2, n_heads=4, max_position_embeddings=40)
LLAMA = dict(TINY, num_key_value_heads=2)
BERT_DECODER = dict(TINY, model_type="bert", is_decoder=True, add_cross_attention=True)
CONFIGS = {  # model_type -> config of the tiny models built on both sides
    "bert": TINY, "roberta": TINY, "xlm-roberta": TINY, "camembert": TINY, "retribert": dict(TINY, projection_dim=11),
    "electra": dict(TINY, embedding_size=16), "albert": dict(TINY, embedding_size=16),
    "distilbert": dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64),
    "deberta": dict(TINY, relative_attention=True, pos_att_type="c2p|p2c", max_relative_positions=4),
    "deberta-v2": dict(TINY, relative_attention=True, pos_att_type="c2p|p2c", max_relative_positions=4),
    "longformer": dict(TINY, attention_window=[4, 6]),
    "mobilebert": dict(TINY, hidden_size=36, intra_bottleneck_size=24, num_attention_heads=3, embedding_size=16,
                       num_feedforward_networks=3),
    "bert-generation": TINY, "xlm": XLM, "flaubert": XLM,
    "reformer": dict(vocab_size=37, hidden_size=30, num_attention_heads=3, attention_head_size=7,
                     feed_forward_size=19, axial_pos_shape=[4, 6], axial_pos_embds_dim=[12, 18],
                     max_position_embeddings=24, attn_layers=["local", "lsh"], pad_token_id=0),
    "gpt2": GPT, "openai-gpt": GPT, "ctrl": dict(GPT, dff=37),
    "xlnet": dict(vocab_size=99, d_model=32, n_layer=2, n_head=4, d_inner=37, mem_len=6),
    "transfo-xl": dict(vocab_size=53, cutoffs=[11, 29], d_model=30, d_embed=30, n_head=3, d_head=7, d_inner=37,
                       div_val=2, n_layer=2, mem_len=4),
    "llama": LLAMA, "mistral": dict(LLAMA, sliding_window=4), "qwen2": dict(LLAMA, sliding_window=4),
    "bart": BART, "mbart": BART, "marian": dict(BART, pad_token_id=1, decoder_start_token_id=1), "pegasus": BART,
    "t5": dict(vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, decoder_start_token_id=0),
    "encoder-decoder": dict(encoder=dict(TINY, model_type="bert"), decoder=BERT_DECODER),
}
OVERRIDES = {"ReformerModelWithLMHead": dict(is_decoder=True)}  # class -> what it requires of the config
LAYER_NUMBER = re.compile(r"\.\d+(?=\.|$)")
REFERENCE_PYTHON = {"flaubert": LEGACY_PYTHON, "transfo-xl": REF434_PYTHON, "retribert": REF434_PYTHON}

# Reference attributes of the 5.x attention interface, bookkeeping of its pluggable attention functions; ours call
# the shared attention math directly and need none of them.
INTERFACE = {"scaling", "layer_idx", "is_causal", "is_cross_attention", "is_decoder", "attention_dropout"}
# What the reference has that ours lacks, each with its reason: a regex over "<class> <path>:<attribute>
# <reference kind>-><our kind>" (layer numbers as *). Every entry must still match something.
EXCEPTIONS = {
    r":(kernel_config|loss_type|attn_implementation) ":
        "5.x PreTrainedModel bookkeeping (kernels hub, loss registry, attention-function dispatch): each model here "
        "computes its loss itself and picks SDPA or the explicit path per call",
    r":gradient_checkpointing bool->None$":
        "gradient checkpointing is not implemented; the Trainer refuses gradient_checkpointing=True with an error",
    r"^(Flaubert\w*|TransfoXL\w*|RetriBertModel) \S*:generation_config NoneType->None$":
        "4.x sets generation_config to None on every model that cannot generate; ours leave it unset",
    r"^(DistilBertForMaskedLM <model>:mlm_loss_fct|RetriBertModel <model>:ce_loss) module:CrossEntropyLoss->None$":
        "losses come from the shared loss functions, not from a loss module on the model",
    r"^(Bart|MBart|Marian|Pegasus)ForCausalLM model:name_or_path str->None$":
        "the decoder wrapper `model` is an nn.ModuleDict (it keeps the model.decoder. key prefix), not a model",
    r"^Qwen2\w+ \S*:(has_sliding_layers|layer_type) ":
        "5.x mask-dispatch bookkeeping; each attention's sliding_window (None = full attention) says the same",
    r"^RetriBertModel bert_query\.(embeddings|encoder\.layer\.\*\.attention\.self):position_embedding_type ":
        "only absolute positions are implemented; other values are refused when the model is built",
    r"^Reformer\w* \S*layers\.\*:(attention_seed|feed_forward_seed) NoneType->None$":
        "the random states a reversible layer's backward pass replays are recorded per pass, not kept on the layer",
    r"^Deberta\w* \S*LayerNorm:variance_epsilon float->None$":
        "DeBERTa's LayerNorms are torch's nn.LayerNorm here (epsilon in `eps`), not a class of their own",
}


def module_inventory(model):
    """{module path: {public attribute: kind}} of a model. A kind is 'module:<class>' for a torch.nn submodule,
    'module' for any other submodule, 'function' for a plain callable, else the type name of a number, string, flag
    or None; other values (configs, tensors) are left out."""
    import torch

    plain = set(vars(torch.nn.Module()))
    inventory = {}
    for path, module in model.named_modules():
        kinds = {}
        for name, value in vars(module).items():
            if name.startswith("_") or name in plain:
                continue
            if isinstance(value, (bool, int, float, str)) or value is None:
                kinds[name] = type(value).__name__
            elif callable(value) and not isinstance(value, torch.nn.Module):
                kinds[name] = "function"
        for name, child in module.named_children():
            torch_class = type(child).__module__.startswith("torch.")
            kinds[name] = f"module:{type(child).__name__}" if torch_class else "module"
        inventory[path] = kinds
    return inventory


_REFERENCE = """
exec(payload["inventory"])
transformers.logging.set_verbosity_error()
result = {}
for model_type, class_name in payload["classes"]:
    torch.manual_seed(0)
    config = transformers.AutoConfig.for_model(model_type, **payload["configs"][class_name])
    result[class_name] = module_inventory(getattr(transformers, class_name)(config))
"""


def config_of(model_type: str, class_name: str) -> dict:
    return {**CONFIGS[model_type], **OVERRIDES.get(class_name, {})}


def classes_by_reference() -> dict:
    """Reference interpreter (None: the one of this process) -> [(model_type, class name)] of every registry class."""
    groups = {}
    for model_type, arch in REGISTRY.items():
        for class_name in sorted(set(arch.heads.values())):
            groups.setdefault(REFERENCE_PYTHON.get(model_type), []).append((model_type, class_name))
    return groups


def reference_inventories() -> dict:
    """{class name: reference inventory} for every registry class."""
    import transformers

    transformers.logging.set_verbosity_error()
    inventories = {}
    for python, classes in classes_by_reference().items():
        if python is not None:
            payload = {"inventory": inspect.getsource(module_inventory), "classes": classes,
                       "configs": {name: config_of(model_type, name) for model_type, name in classes}}
            inventories.update(run_legacy(_REFERENCE, payload, python=python))
            continue
        for model_type, class_name in classes:
            torch.manual_seed(0)
            config = transformers.AutoConfig.for_model(model_type, **config_of(model_type, class_name))
            inventories[class_name] = module_inventory(getattr(transformers, class_name)(config))
    return inventories


def our_model(model_type: str, class_name: str):
    import leanformers

    arch = REGISTRY[model_type]
    config = leanformers.AutoConfig.for_model(model_type, **config_of(model_type, class_name))
    return _import(module_path(arch), class_name)(config)


def same_kind(reference: str, ours: str | None) -> bool:
    """Numbers agree with numbers; a submodule of a class of the reference's own with any submodule."""
    if reference in ("int", "float"):
        return ours in ("int", "float")
    if reference == "module":
        return ours is not None and ours.startswith("module")
    return ours == reference


def lacking(reference: dict, model) -> list[str]:
    """"path:attribute ref-kind->our-kind" for each reference attribute ours lacks or holds as another kind, over the
    modules both trees have (a missing subtree shows as the attribute of its parent); layer numbers become '*'."""
    ours, modules = module_inventory(model), dict(model.named_modules())
    found = set()
    for path, kinds in reference.items():
        if path not in ours:
            continue
        for name, kind in kinds.items():
            if kind == "function" or (name in INTERFACE and not kind.startswith("module")):
                continue
            mine = ours[path].get(name)
            if mine is None and not kind.startswith("module") and hasattr(modules[path], name):
                continue  # a property or class attribute of ours
            if not same_kind(kind, mine):
                found.add(f"{LAYER_NUMBER.sub('.*', path) or '<model>'}:{name} {kind}->{mine}")
    return sorted(found)


@pytest.fixture(scope="module")
def reference():
    return reference_inventories()


def test_every_reference_attribute_is_ours(reference):
    """Every attribute and submodule the reference has, ours has (of the same kind), but for EXCEPTIONS."""
    missing = [f"{class_name} {item}" for model_type, arch in REGISTRY.items()
               for class_name in sorted(set(arch.heads.values()))
               for item in lacking(reference[class_name], our_model(model_type, class_name))]
    unexplained = [item for item in missing if not any(re.search(pattern, item) for pattern in EXCEPTIONS)]
    assert not unexplained, "attributes of the reference that ours lack:\n" + "\n".join(unexplained)
    stale = [pattern for pattern in EXCEPTIONS if not any(re.search(pattern, item) for item in missing)]
    assert not stale, f"exceptions that no longer match anything, to remove: {stale}"


PATCHES = {  # class -> (config class, config, path of an activation module), as user code reaches it
    "BertModel": ("BertConfig", TINY, "encoder.layer.1.intermediate.intermediate_act_fn"),
    "LlamaModel": ("LlamaConfig", LLAMA, "layers.0.mlp.act_fn"),
    "GPT2Model": ("GPT2Config", GPT, "h.1.mlp.act"),
    "BartModel": ("BartConfig", BART, "decoder.layers.0.activation_fn"),
}


@pytest.mark.parametrize("name", PATCHES)
def test_activation_modules_are_hooked_and_replaced_like_the_reference(tmp_path, name):
    """A forward hook on an activation module fires; replacing the module changes the outputs as it changes the
    reference's."""
    import leanformers
    from tests.parity.harness import save_reference_model

    config_class, config, path = PATCHES[name]
    reference = save_reference_model(name, config_class, tmp_path, **config)
    ours = getattr(leanformers, name).from_pretrained(tmp_path).eval()
    calls = []
    ours.get_submodule(path).register_forward_hook(lambda module, args, out: calls.append(out.shape))
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    inputs = {"input_ids": ids, **({"decoder_input_ids": ids[:, :4]} if name == "BartModel" else {})}
    with torch.no_grad():
        before = ours(**inputs).last_hidden_state
    assert calls
    parent, _, attribute = path.rpartition(".")
    for model in (ours, reference):
        setattr(model.get_submodule(parent), attribute, torch.nn.Tanh())
    with torch.no_grad():
        after, expected = ours(**inputs).last_hidden_state, reference(**inputs).last_hidden_state
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(before, after)

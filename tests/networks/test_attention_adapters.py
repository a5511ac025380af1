"""Attention modules as researchers write them: each clean module passes, its perturbed twin fails, and a module holding
more than attention is a composite (transformer layers) or refused naming the part outside."""

import pytest
import torch
from torch import nn

import hjsym
from hjsym import ModuleFormError


def passes_and_twin_fails(module, check):
    report = hjsym.check("attention", module=module, negative_controls=True)
    assert report.passed, report.table()
    assert [c.name for c in report.checks] == [check]
    c = report.check(check)
    assert not c.details["negative_control"]["passed"] and c.margin > 1
    return report


def test_multihead_attention_with_kdim_and_vdim():
    report = passes_and_twin_fails(nn.MultiheadAttention(12, 3, kdim=8, vdim=5, batch_first=True, dtype=torch.float64), "mha")
    assert {c["mode"] for c in report.check("mha").details["cases"]} == {"cross", "cross-causal"}
    assert any("kdim=8, vdim=5" in n for n in report.notes)


@pytest.mark.parametrize("kind, kwargs", [
    ("encoder", dict(batch_first=True)),
    ("encoder", dict(activation="gelu", norm_first=True)),
    ("decoder", dict(batch_first=True, norm_first=True)),
    ("decoder", dict()),
])
def test_transformer_layers_are_checked_as_composites(kind, kwargs):
    cls = nn.TransformerEncoderLayer if kind == "encoder" else nn.TransformerDecoderLayer
    torch.manual_seed(0)
    layer = cls(16, 4, dim_feedforward=32, dropout=0.1, dtype=torch.float64, **kwargs)
    report = passes_and_twin_fails(layer, "transformer_layer")
    assert any("composite" in n and "structural" in n for n in report.notes)


def test_a_changed_feed_forward_or_activation_is_refused_by_name():
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dtype=torch.float64)
    layer.linear2 = nn.Sequential(nn.Linear(32, 16, dtype=torch.float64), nn.Tanh())
    with pytest.raises(ModuleFormError, match="linear2 is Sequential"):
        hjsym.check("attention", module=layer)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, activation=torch.tanh, dtype=torch.float64)
    with pytest.raises(ModuleFormError, match="activation is tanh"):
        hjsym.check("attention", module=layer)

    class Mine(nn.TransformerEncoderLayer):
        def forward(self, src, *args, **kwargs):
            return 2 * super().forward(src)

    with pytest.raises(ModuleFormError, match="overrides the forward"):
        hjsym.check("attention", module=Mine(16, 4, dtype=torch.float64))


class Doubled(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)

    def forward(self, x):
        return 2 * self.mha(x, x, x)[0]


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(8, dtype=torch.float64)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)

    def forward(self, x):
        h = self.ln(x)
        return x + self.attn(h, h, h)[0]


@pytest.mark.parametrize("make, message", [(Doubled, r"mul \(\*\) lie outside"), (Block, r"ln \(LayerNorm\).*outside")])
def test_a_module_with_more_than_attention_is_refused_naming_the_part(make, message):
    with pytest.raises(ModuleFormError, match=message):
        hjsym.check("attention", module=make())


def test_a_pass_through_wrapper_is_the_attention():
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)

        def forward(self, x):
            return self.inner(x, x, x, need_weights=False)[0]

    report = passes_and_twin_fails(Wrapper(), "mha")
    assert "Wrapper (forward:" in report.network


def test_a_module_no_check_reads_is_refused_not_passed():
    with pytest.raises(ModuleFormError, match="contains no attention module"):
        hjsym.check("attention", module=nn.Linear(3, 3))


# ----------------------------------------------------------------------------- timm (a copy written exactly as timm writes it)
class Attention(nn.Module):
    """timm.layers.attention.Attention (timm 1.0), copied as timm writes it without its optional norm and gate branches (they
    default to nn.Identity and None): timm imports torchvision at package import, which does not load beside a CPU build of
    torch, so the adapter is tested on this copy (and on timm itself where it imports)."""

    def __init__(self, dim, num_heads=8, qkv_bias=False, attn_drop=0.0, proj_drop=0.0, fused=True, dtype=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_dim = num_heads * self.head_dim
        self.scale = self.head_dim ** -0.5
        self.fused_attn = fused
        self.qkv = nn.Linear(dim, self.attn_dim * 3, bias=qkv_bias, dtype=dtype)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.norm = nn.Identity()
        self.gate = None
        self.proj = nn.Linear(self.attn_dim, dim, bias=True, dtype=dtype)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, attn_mask=None, is_causal=False):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.fused_attn:
            x = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                                                 dropout_p=self.attn_drop.p if self.training else 0.0, is_causal=is_causal)
        else:
            q = q * self.scale
            attn = q @ k.transpose(-2, -1)
            if is_causal:
                attn = attn + attn.new_full((N, N), float("-inf")).triu_(1)
            elif attn_mask is not None:
                attn = attn + attn_mask
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, self.attn_dim)
        x = self.norm(x)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


@pytest.mark.parametrize("fused, qkv_bias", [(True, True), (False, False)])
def test_timm_vit_attention(fused, qkv_bias):
    torch.manual_seed(0)
    report = passes_and_twin_fails(Attention(16, 4, qkv_bias=qkv_bias, fused=fused, dtype=torch.float64), "mha")
    assert "timm Attention" in report.network
    assert {c["mode"] for c in report.check("mha").details["cases"]} == {"self", "causal"}


def test_timm_itself_when_it_imports():
    try:
        from timm.layers import Attention as TimmAttention
    except Exception as exc:  # noqa: BLE001 - any import failure means the library is not usable here
        pytest.skip(f"timm does not import here ({type(exc).__name__}: {exc}); the copy above is tested instead")
    torch.manual_seed(0)
    passes_and_twin_fails(TimmAttention(16, 4, qkv_bias=True).double(), "mha")


# ----------------------------------------------------------------------------- Hugging Face transformers
def _hf():
    return pytest.importorskip("transformers", reason="transformers is not installed (pip install 'hjsym[adapters]')")


def test_gpt2_attention():
    tf = _hf()
    from transformers.models.gpt2.modeling_gpt2 import GPT2Attention

    torch.manual_seed(0)
    cfg = tf.GPT2Config(n_embd=16, n_head=4, n_layer=1, vocab_size=10, bos_token_id=0, eos_token_id=0)
    report = passes_and_twin_fails(GPT2Attention(cfg, layer_idx=0).double(), "mha")
    assert "GPT2Attention" in report.network


def test_bert_self_attention():
    tf = _hf()
    from transformers.models.bert.modeling_bert import BertSelfAttention

    torch.manual_seed(1)
    cfg = tf.BertConfig(hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=32, vocab_size=10)
    passes_and_twin_fails(BertSelfAttention(cfg).double(), "mha")


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_llama_attention_with_rotary_positions_and_grouped_query_heads(kv_heads):
    tf = _hf()
    from transformers.models.llama.modeling_llama import LlamaAttention

    torch.manual_seed(2)
    cfg = tf.LlamaConfig(hidden_size=16, num_attention_heads=4, num_key_value_heads=kv_heads, intermediate_size=32, num_hidden_layers=1,
                         vocab_size=10, max_position_embeddings=64, attention_bias=kv_heads == 2)
    report = passes_and_twin_fails(LlamaAttention(cfg, layer_idx=0).double(), "mha")
    assert f"key/value heads={kv_heads}" in report.network

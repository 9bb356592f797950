"""model.gemm: float32 products on a CPU by oneDNN, torch's elsewhere, same results."""
import pytest
import torch
import torch.nn.functional as F

from vsremaster.model import gemm
from vsremaster.model.blocks import Attention, attention_reference


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")
def test_float32_products_on_a_cpu_go_to_onednn():
    x = _rand(3, 4)
    with torch.no_grad():
        assert gemm.onednn(x)
        assert not gemm.onednn(x.to(torch.bfloat16))
        enabled = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False
        try:
            assert not gemm.onednn(x)
        finally:
            torch.backends.mkldnn.enabled = enabled
    w = x.clone().requires_grad_()
    assert not gemm.onednn(x, w)            # autograd must see the product: torch's
    with torch.no_grad():
        assert gemm.onednn(x, w)


@pytest.mark.parametrize("layout", ["contiguous", "strided rows", "transposed weight"])
def test_linear_equals_the_product_for_views(layout):
    a, w = _rand(70, 90, seed=1), _rand(40, 90, seed=2)
    if layout == "strided rows":            # Winograd's K taps of a tile, rows apart
        a = _rand(70, 6, 30, seed=3)[:, 2:5].flatten(1)
        assert not a.is_contiguous()
    if layout == "transposed weight":       # attention's values [S, C] as w = v^T
        w = _rand(90, 40, seed=4).t()
    with torch.no_grad():
        got = gemm.linear(a, w)
    want = a.double() @ w.double().t()
    assert got.shape == (70, 40) and got.dtype == torch.float32 and got.is_contiguous()
    assert (got.double() - want).abs().max() < 1e-4
    with torch.no_grad():                   # fixed bits: the same product gives the same bits
        assert torch.equal(gemm.linear(a, w), got)


def test_linear_keeps_autograd_and_other_dtypes():
    a, w = _rand(8, 5, seed=5).requires_grad_(), _rand(3, 5, seed=6)
    gemm.linear(a, w).sum().backward()
    assert torch.allclose(a.grad, w.sum(0).expand(8, 5))
    b, v = _rand(8, 5, seed=7, dtype=torch.bfloat16), _rand(3, 5, seed=8, dtype=torch.bfloat16)
    assert torch.equal(gemm.linear(b, v), F.linear(b, v))


def test_cpu_attention_with_onednn_products_matches_the_authors_matmul_softmax():
    torch.manual_seed(0)
    att = Attention(16, 16).eval()
    with torch.no_grad():
        att.gamma.fill_(0.7)
        src, ref = _rand(1, 16, 2, 6, 5, seed=9), _rand(1, 16, 3, 4, 4, seed=10)
        got, want = att(src, ref), attention_reference(att, src, ref)
    assert (got - want).abs().max() < 1e-5

"""State contract in PyTorch (MM-REC.md §3) and the hand-written scan backward."""
import torch

from mmrec.model import MMRec, _ScanFunction, get_config, recurrence_scan

torch.manual_seed(0)


def _model():
    torch.manual_seed(1)
    m = MMRec(get_config("test")).eval()
    return m


def _run_chunks(m, ids, sizes):
    state = m.zero_state(ids.size(0))
    outs, pos = [], 0
    for n in sizes:
        logits, state = m(ids[:, pos : pos + n], state)
        outs.append(logits)
        pos += n
    return torch.cat(outs, 1), state


@torch.no_grad()
def test_whole_vs_token_by_token_vs_random_chunks():
    m = _model()
    ids = torch.randint(0, m.cfg.vocab_size, (3, 23))
    whole, s_whole = _run_chunks(m, ids, [23])
    g = torch.Generator().manual_seed(5)
    for sizes in ([1] * 23, [5, 1, 9, 8], [int(x) for x in _random_split(23, g)]):
        got, s_got = _run_chunks(m, ids, sizes)
        assert torch.allclose(got, whole, rtol=0, atol=1e-5 * whole.abs().max()), sizes
        for a, b in zip(s_got, s_whole):
            assert torch.allclose(a, b, rtol=0, atol=1e-5 * b.abs().max().clamp(min=1e-6)), sizes


def _random_split(n, g):
    cuts = sorted(torch.randperm(n - 1, generator=g)[:4].add(1).tolist())
    return [b - a for a, b in zip([0] + cuts, cuts + [n])]


@torch.no_grad()
def test_batch_rows_are_independent():
    m = _model()
    ids = torch.randint(0, m.cfg.vocab_size, (4, 11))
    state = [torch.randn(4, m.cfg.d_model) for _ in range(m.cfg.n_layers)]
    logits, new = m(ids, state)
    other = ids.clone()
    other[[0, 2, 3]] = torch.randint(0, m.cfg.vocab_size, (3, 11))
    other_state = [s.clone() for s in state]
    for s in other_state:
        s[[0, 2, 3]] = torch.randn(3, m.cfg.d_model)
    logits2, new2 = m(other, other_state)
    assert torch.equal(logits[1], logits2[1]) or torch.allclose(logits[1], logits2[1], atol=1e-6)
    for a, b in zip(new, new2):
        assert torch.allclose(a[1], b[1], atol=1e-6)
    single, _ = m(ids[1:2], [s[1:2] for s in state])
    assert torch.allclose(single[0], logits[1], atol=1e-5)


@torch.no_grad()
def test_zero_state_is_the_start():
    m = _model()
    ids = torch.randint(0, m.cfg.vocab_size, (2, 6))
    a, _ = m(ids, m.zero_state(2))
    b, _ = m(ids, [torch.full((2, m.cfg.d_model), 0.5) for _ in range(m.cfg.n_layers)])
    assert not torch.allclose(a, b), "the state input must matter"


def test_scan_backward_matches_autograd():
    g = torch.Generator().manual_seed(0)
    B, T, D = 3, 9, 6
    z = torch.randn(B, T, D, dtype=torch.double, generator=g).requires_grad_()
    gam = torch.rand(B, T, D, dtype=torch.double, generator=g).requires_grad_()
    h0 = torch.randn(B, D, dtype=torch.double, generator=g).requires_grad_()
    w = torch.randn(D, D, dtype=torch.double, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: _ScanFunction.apply(*a), (z, gam, h0, w))
    hs, last = recurrence_scan(z, gam, h0, w)
    hs2, last2 = _ScanFunction.apply(z, gam, h0, w)
    assert torch.allclose(hs, hs2) and torch.allclose(last, last2)
    # Gradients through the whole model match the scripted loop's autograd.
    (hs * torch.arange(T, dtype=torch.double).view(1, T, 1)).sum().backward()
    ref = [t.grad.clone() for t in (z, gam, h0, w)]
    for t in (z, gam, h0, w):
        t.grad = None
    (hs2 * torch.arange(T, dtype=torch.double).view(1, T, 1)).sum().backward()
    for r, t in zip(ref, (z, gam, h0, w)):
        assert torch.allclose(r, t.grad)


def test_unseen_bias():
    m = MMRec(get_config("test"))
    m.set_unseen_bias(torch.tensor([3, 5, 100257]), -20.0)
    assert m.out_bias[3] == 0 and m.out_bias[100257] == 0 and m.out_bias[4] == -20.0
    assert int((m.out_bias == -20.0).sum()) == m.cfg.vocab_size - 3


def test_presets_parameter_counts():
    # The seed's 100M hyper-parameters with a full 256-dim tied embedding.
    from mmrec.model import count_parameters

    n = count_parameters(MMRec(get_config("100m")))
    assert 50e6 < n < 60e6, n

"""The reference MM-Rec model (MM-REC.md §2).

One block, input x [B, T, D]:

    x̂   = RMSNorm₁(x)
    z    = W_z x̂
    γ    = clamp(σ(W_up ReLU(W_down z)), 1e-6, 1-1e-6)          (DPG decay)
    h_t  = z_t ⊙ σ(W_g h_{t-1}) + γ_t ⊙ h_{t-1}                   (t = 1..T)
    y    = x + W_o h
    out  = y + W_2 GELU(W_1 RMSNorm₂(y))

Everything except the h recurrence is computed for the whole sequence at once.
The recurrence is a TorchScript-scripted loop so that ONNX export turns it into
a single `Loop` node (a traced Python loop would unroll to a fixed length).

State: one float32 tensor h [B, D] per layer; zeros = empty history.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

GAMMA_MIN = 1e-6
GAMMA_MAX = 1.0 - 1e-6


@dataclass
class MMRecConfig:
    vocab_size: int = 100277
    d_model: int = 256
    n_layers: int = 16
    d_ffn: int = 3072
    dpg_rank: int = 64
    # None: plain tied D-dim embedding. r: token → A[v] (rank r) → up-projection to D;
    # the head is the mirror image (down-projection D → r, then A^T).
    embed_rank: Optional[int] = None
    norm_eps: float = 1e-6
    # DPG bias init: per-channel retention time constants spread log-uniformly in
    # [tau_min, tau_max] tokens (γ = 1 - 1/τ), so some channels start out remembering
    # for a long time; name recall across several turns depends on such channels.
    tau_min: float = 2.0
    tau_max: float = 256.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MMRecConfig":
        """Ignores unknown keys (config.json's "model" also carries derived values)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


PRESETS = {
    # The seed's MMRec100M hyperparameters (hidden 256, 16 layers, FFN 3072, D/4 DPG rank).
    "100m": MMRecConfig(d_model=256, n_layers=16, d_ffn=3072, dpg_rank=64, embed_rank=None),
    # The committed demo model. ≤ 16 MB in fp16: the 100277-row embedding is
    # factorised to rank 64 (12.8 MB). The blocks are small because training must
    # fit in ~20 minutes on 2 CPU cores: the block FLOPs per token, not the
    # parameter count, set the training speed (see the model card).
    "tiny": MMRecConfig(d_model=128, n_layers=4, d_ffn=512, dpg_rank=32, embed_rank=64),
    # For tests: small and fast to export.
    "test": MMRecConfig(d_model=32, n_layers=2, d_ffn=64, dpg_rank=8, embed_rank=8),
}


def get_config(preset: str, **overrides) -> MMRecConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    d = PRESETS[preset].to_dict()
    d.update({k: v for k, v in overrides.items() if v is not None})
    return MMRecConfig.from_dict(d)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


@torch.jit.script
def recurrence_scan(z: torch.Tensor, gamma: torch.Tensor, h0: torch.Tensor, w_g: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """h_t = z_t ⊙ σ(h_{t-1} W_gᵀ) + γ_t ⊙ h_{t-1}; z, gamma [B, T, D], h0 [B, D], w_g [D, D].

    Returns (all h_t [B, T, D], last h [B, D]). Exports to one ONNX Loop over T.
    """
    w_t = w_g.t()
    h = h0
    hs: List[torch.Tensor] = []
    for t in range(z.size(1)):
        h = z[:, t] * torch.sigmoid(torch.matmul(h, w_t)) + gamma[:, t] * h
        hs.append(h)
    return torch.stack(hs, 1), h


@torch.jit.script
def _scan_forward(z: torch.Tensor, gamma: torch.Tensor, h0: torch.Tensor, w_t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Training forward on time-major [T, B, D] inputs; also keeps the gates σ_t for the backward pass."""
    h = h0
    hs: List[torch.Tensor] = []
    ss: List[torch.Tensor] = []
    for t in range(z.size(0)):
        s = torch.sigmoid(torch.mm(h, w_t))
        h = torch.addcmul(gamma[t] * h, z[t], s)
        hs.append(h)
        ss.append(s)
    return torch.stack(hs), torch.stack(ss)


@torch.jit.script
def _scan_backward(g_hs: torch.Tensor, gamma: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Reverse-time pass: the total gradient G_t = dL/dh_t for every t (time-major).

    dh_{t-1} receives G_t ⊙ γ_t directly and (G_t ⊙ z_t ⊙ σ_t(1-σ_t)) W_g through the
    gate; c = z ⊙ σ(1-σ) is precomputed so each step is one multiply, one addcmul-like
    update and one matmul. Everything else (dz, dγ, dW_g) is vectorised by the caller.
    """
    T = g_hs.size(0)
    carry = torch.zeros_like(g_hs[0])
    gs: List[torch.Tensor] = []
    for i in range(T):
        t = T - 1 - i
        g = g_hs[t] + carry
        gs.append(g)
        carry = torch.addmm(g * gamma[t], g * c[t], w)
    gs.reverse()
    return torch.stack(gs)


class _ScanFunction(torch.autograd.Function):
    """Same math as recurrence_scan with a hand-written backward.

    Autograd through the T-step scripted loop records several graph nodes per step;
    this explicit reverse scan does one matmul and two element-wise ops per step and
    vectorises the rest. Used for training only; tests check it against autograd.
    """

    @staticmethod
    def forward(ctx, z, gamma, h0, w_g):
        zt = z.transpose(0, 1).contiguous()  # time-major: every step reads contiguous memory
        gt = gamma.transpose(0, 1).contiguous()
        hs, ss = _scan_forward(zt, gt, h0, w_g.t().contiguous())
        ctx.save_for_backward(zt, gt, h0, w_g, hs, ss)
        return hs.transpose(0, 1), hs[-1].clone()

    @staticmethod
    def backward(ctx, g_hs, g_last):
        zt, gt, h0, w_g, hs, ss = ctx.saved_tensors
        g = torch.zeros_like(hs) if g_hs is None else g_hs.transpose(0, 1).contiguous()
        if g_last is not None:
            g[-1] += g_last
        G = _scan_backward(g, gt, zt * ss * (1.0 - ss), w_g)
        h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]], 0)
        D = zt.size(2)
        da = G * zt * ss * (1.0 - ss)
        dw = torch.mm(da.reshape(-1, D).t(), h_prev.reshape(-1, D))  # [D_out, D_in], like nn.Linear.weight
        dh0 = G[0] * gt[0] + torch.mm(da[0], w_g)
        return (G * ss).transpose(0, 1), (G * h_prev).transpose(0, 1), dh0, dw


def scan(z: torch.Tensor, gamma: torch.Tensor, h0: torch.Tensor, w_g: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Recurrence for any caller: the fast hand-written backward when gradients are
    needed, the exportable scripted loop otherwise (tracing/export, inference)."""
    if torch.is_grad_enabled() and not torch.jit.is_tracing() and any(t.requires_grad for t in (z, gamma, h0, w_g)):
        return _ScanFunction.apply(z, gamma, h0, w_g)
    return recurrence_scan(z, gamma, h0, w_g)


class MMRecBlock(nn.Module):
    def __init__(self, cfg: MMRecConfig, layer: int):
        super().__init__()
        D = cfg.d_model
        self.norm1 = RMSNorm(D, cfg.norm_eps)
        self.w_z = nn.Linear(D, D, bias=False)
        self.w_g = nn.Linear(D, D, bias=False)
        self.w_down = nn.Linear(D, cfg.dpg_rank, bias=False)
        self.w_up = nn.Linear(cfg.dpg_rank, D, bias=True)
        self.w_o = nn.Linear(D, D, bias=False)
        self.norm2 = RMSNorm(D, cfg.norm_eps)
        self.w_1 = nn.Linear(D, cfg.d_ffn, bias=False)
        self.w_2 = nn.Linear(cfg.d_ffn, D, bias=False)
        self._init(cfg, layer)

    def _init(self, cfg: MMRecConfig, layer: int) -> None:
        D = cfg.d_model
        resid = 1.0 / math.sqrt(2 * cfg.n_layers)  # residual branches start small (GPT-2 style)
        nn.init.normal_(self.w_z.weight, std=1.0 / math.sqrt(D))
        nn.init.normal_(self.w_g.weight, std=0.5 / math.sqrt(D))
        nn.init.normal_(self.w_down.weight, std=1.0 / math.sqrt(D))
        nn.init.normal_(self.w_up.weight, std=0.1 / math.sqrt(cfg.dpg_rank))
        # Log-uniform time constants, shuffled per layer so no channel index is special.
        g = torch.Generator().manual_seed(1000 + layer)
        tau = torch.exp(torch.empty(D).uniform_(math.log(cfg.tau_min), math.log(cfg.tau_max), generator=g))
        gamma0 = 1.0 - 1.0 / tau
        with torch.no_grad():
            self.w_up.bias.copy_(torch.log(gamma0 / (1.0 - gamma0)))
        nn.init.normal_(self.w_o.weight, std=resid / math.sqrt(D))
        nn.init.normal_(self.w_1.weight, std=1.0 / math.sqrt(D))
        nn.init.normal_(self.w_2.weight, std=resid / math.sqrt(cfg.d_ffn))

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        z = self.w_z(self.norm1(x))
        gamma = torch.clamp(torch.sigmoid(self.w_up(F.relu(self.w_down(z)))), GAMMA_MIN, GAMMA_MAX)
        hs, h_last = scan(z, gamma, h0, self.w_g.weight)
        y = x + self.w_o(hs)
        return y + self.w_2(F.gelu(self.w_1(self.norm2(y)))), h_last


class MMRec(nn.Module):
    def __init__(self, cfg: MMRecConfig):
        super().__init__()
        self.cfg = cfg
        V, D, r = cfg.vocab_size, cfg.d_model, cfg.embed_rank
        if r is None:
            self.embed = nn.Parameter(torch.randn(V, D) * 0.02)
            self.up = None
            self.down = None
        else:
            # Factorised tied embedding: A [V, r]; up r→D for the input, down D→r for the head.
            self.embed = nn.Parameter(torch.randn(V, r) * (1.0 / math.sqrt(r)))
            self.up = nn.Linear(r, D, bias=False)
            self.down = nn.Linear(D, r, bias=False)
            nn.init.normal_(self.up.weight, std=1.0)
            nn.init.normal_(self.down.weight, std=1.0 / math.sqrt(D))
        self.blocks = nn.ModuleList([MMRecBlock(cfg, i) for i in range(cfg.n_layers)])
        self.norm_f = RMSNorm(D, cfg.norm_eps)
        # Per-token output bias. Trainers that restrict the softmax to the corpus
        # vocabulary set it to a large negative value for never-seen tokens (see
        # set_unseen_bias); a full-softmax model would learn exactly that, since
        # every gradient step pushes the logits of tokens that never occur down.
        self.out_bias = nn.Parameter(torch.zeros(V))

    def zero_state(self, batch: int, device=None) -> List[torch.Tensor]:
        return [torch.zeros(batch, self.cfg.d_model, device=device) for _ in range(self.cfg.n_layers)]

    def hidden(self, input_ids: torch.Tensor, state: List[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Final-norm hidden states projected to the head space ([B, T, r] or [B, T, D]) and the new state."""
        x = F.embedding(input_ids, self.embed)
        if self.up is not None:
            x = self.up(x)
        new_state: List[torch.Tensor] = []
        for block, h0 in zip(self.blocks, state):
            x, h = block(x, h0)
            new_state.append(h)
        x = self.norm_f(x)
        if self.down is not None:
            x = self.down(x)
        return x, new_state

    def head(self, x: torch.Tensor, vocab: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits over the whole vocabulary, or over the ids in `vocab` only (restricted softmax)."""
        # A 2-D F.linear exports as Gemm(transB=1): the graph reads the embedding
        # table as stored instead of keeping a second, transposed copy of it.
        flat = x.reshape(-1, x.size(-1))
        if vocab is None:
            logits = F.linear(flat, self.embed, self.out_bias)
        else:
            logits = F.linear(flat, self.embed[vocab], self.out_bias[vocab])
        return logits.reshape(x.shape[:-1] + (logits.size(-1),))

    def forward(self, input_ids: torch.Tensor, state: List[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        x, new_state = self.hidden(input_ids, state)
        return self.head(x), new_state

    @torch.no_grad()
    def set_unseen_bias(self, seen: torch.Tensor, value: float = -20.0) -> None:
        """out_bias[v] = value for every token id not in `seen` (a bool mask or an id list)."""
        mask = torch.ones(self.cfg.vocab_size, dtype=torch.bool)
        if seen.dtype == torch.bool:
            mask &= ~seen
        else:
            mask[seen] = False
        self.out_bias[mask] = value


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_checkpoint(path: str) -> dict:
    """A checkpoint written by mmrec.train (a trusted, locally written file).

    weights_only is stated explicitly because its default changed in PyTorch 2.6, and
    1.13's weights-only unpickler cannot read the floats in the saved arguments."""
    return torch.load(path, map_location="cpu", weights_only=False)

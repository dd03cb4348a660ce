#!/usr/bin/env python3
"""The spiral model in PyTorch: the reference the CUDA engine is timed against.

Written from docs/model.md (the model definition), batched and vectorized
as a PyTorch user would write it: fused q/k/v and w1/w3 weights,
scaled_dot_product_attention (flash attention) with RoPE, chunks by
padding and reshaping, bf16 autocast, fused AdamW.

  check --weights W.safetensors --tokens T.u16
      the mean next-token loss of the model in W on the tokens T, in fp32
      (TF32 off), printed as "loss X": compared with `spiral eval` on the
      same files, it proves this is the same model.
  bench --case NAME [--compile | --graphs] [--steps N] [--windows W]
      training steps (forward, backward, clip, AdamW) per second on random
      tokens at the two shapes of tests/cuda/bench_cuda_engine.cu: after 10
      warm-up steps (compilation included), W windows of N steps each are
      timed; printed as "# result CASE torch-MODE tokens_per_s peak_GB" with
      the fastest window's rate (the most favourable to PyTorch; peak_GB nan
      in the graph mode, whose pools the allocator's peak does not count), and
      "# windows CASE torch-MODE slowest median fastest". MODE: eager;
      compile (torch.compile's default mode); graphs (torch.compile's
      "reduce-overhead" mode: the compiled forward and backward replayed as
      CUDA graphs, for steps bound by the host's launches).
"""

import argparse
import json
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

CASES = {
    # name: (V, d, H, F, B, L) with 1 pre + 2 core x g=8,4,2,1 + 1 post, selfagg/alloc/residual
    "d256": (256, 256, 4, 688, 64, 256),
    "d768": (50304, 768, 12, 2048, 8, 2048),
}


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name}: expected F32, got {info['dtype']}")
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").copy()).reshape(info["shape"])
    return out, meta


def normalize(cfg):
    c = dict(cfg)
    c.setdefault("rope_base", 10000.0)
    c.setdefault("norm_eps", 1e-5)
    c.setdefault("tie_embeddings", True)
    c.setdefault("down", "mean")
    c.setdefault("up", "copy")
    c.setdefault("topology", "residual")
    c["schedule"] = [{"g": int(s["g"]), "offset": int(s.get("offset", 0)),
                      "shift": int(s.get("shift", int(s["g"]) - 1))} for s in c["schedule"]]
    return c


class Spiral(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = self.cfg = normalize(cfg)
        V, d, Fw = c["vocab_size"], c["d_model"], c["d_ff"]
        P = torch.nn.Parameter
        self.tok_emb = P(torch.randn(V, d) * 0.02)
        self.final_norm = P(torch.ones(d))
        self.lm_head = None if c["tie_embeddings"] else P(torch.randn(V, d) * 0.02)

        def block(n):
            return torch.nn.ModuleList([torch.nn.ParameterDict({
                "attn_norm": P(torch.ones(d)), "wqkv": P(torch.randn(3 * d, d) * 0.02),
                "wo": P(torch.randn(d, d) * 0.02), "mlp_norm": P(torch.ones(d)),
                "w13": P(torch.randn(2 * Fw, d) * 0.02), "w2": P(torch.randn(d, Fw) * 0.02)})
                for _ in range(n)])
        self.pre, self.loop, self.post = block(c["n_pre"]), block(c["n_loop"]), block(c["n_post"])
        self.score = torch.nn.ParameterList(
            [P(torch.zeros(d)) for _ in c["schedule"]] if c["down"] == "selfagg" else [])
        self.alloc = torch.nn.ParameterList(
            [P(torch.zeros(s["g"], d)) for s in c["schedule"]] if c["up"] == "alloc" else [])

    def load_spiral(self, W):
        """Copies spiral's tensors (safetensors names) into this module."""
        with torch.no_grad():
            self.tok_emb.copy_(W["tok_emb.weight"])
            self.final_norm.copy_(W["final_norm.weight"])
            if self.lm_head is not None:
                self.lm_head.copy_(W["lm_head.weight"])
            for kind, blocks in (("pre", self.pre), ("loop", self.loop), ("post", self.post)):
                for l, p in enumerate(blocks):
                    k = f"{kind}.{l}"
                    p["attn_norm"].copy_(W[k + ".attn_norm.weight"])
                    p["wqkv"].copy_(torch.cat([W[k + f".attn.{x}.weight"] for x in ("wq", "wk", "wv")]))
                    p["wo"].copy_(W[k + ".attn.wo.weight"])
                    p["mlp_norm"].copy_(W[k + ".mlp_norm.weight"])
                    p["w13"].copy_(torch.cat([W[k + ".mlp.w1.weight"], W[k + ".mlp.w3.weight"]]))
                    p["w2"].copy_(W[k + ".mlp.w2.weight"])
            for t, s in enumerate(self.score):
                s.copy_(W[f"iter.{t}.down.score"])
            for t, a in enumerate(self.alloc):
                a.copy_(W[f"iter.{t}.up.alloc"])

    def rmsnorm(self, x, gain):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.cfg["norm_eps"])).to(x.dtype) * gain

    def rope_tables(self, pos, dh, device):
        m = torch.arange(dh // 2, device=device, dtype=torch.float64)
        ang = pos.to(torch.float64)[:, None] * self.cfg["rope_base"] ** (-2.0 * m / dh)
        return torch.cos(ang).float(), torch.sin(ang).float()

    @staticmethod
    def rope(x, cos, sin):  # x (B, H, n, dh), half split
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    def layer(self, x, p, cos, sin):
        B, n, d = x.shape
        H = self.cfg["n_heads"]
        dh = d // H
        q, k, v = F.linear(self.rmsnorm(x, p["attn_norm"]), p["wqkv"]).split(d, dim=-1)
        q, k, v = (t.view(B, n, H, dh).transpose(1, 2) for t in (q, k, v))
        q, k = self.rope(q, cos, sin).to(v.dtype), self.rope(k, cos, sin).to(v.dtype)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + F.linear(att.transpose(1, 2).reshape(B, n, d), p["wo"])
        a, c = F.linear(self.rmsnorm(x, p["mlp_norm"]), p["w13"]).chunk(2, dim=-1)
        return x + F.linear(F.silu(a) * c, p["w2"])

    def iteration(self, h, h0, t):
        c = self.cfg
        B, L, d = h.shape
        s = c["schedule"][t]
        g, w, shift = s["g"], s["offset"], s["shift"]
        J = (L - 1 + w) // g + 1
        right = J * g - w - L
        # chunks: token i sits at (i + w) of a padded (B, J, g, d) grid
        hp = F.pad(h, (0, 0, w, right)).view(B, J, g, d)
        member = F.pad(torch.ones(L, device=h.device), (w, right)).view(J, g)
        if c["down"] == "mean":
            z = hp.sum(2) / member.sum(1)[None, :, None]
        else:
            score = (hp * self.score[t]).sum(-1).masked_fill(member[None] == 0, float("-inf"))
            z = (torch.softmax(score.float(), dim=-1).to(hp.dtype)[..., None] * hp).sum(2)
        pos = torch.clamp((torch.arange(J, device=h.device) + 1) * g - w - 1, max=L - 1)
        cos, sin = self.rope_tables(pos, d // c["n_heads"], h.device)
        zt = z
        for p in self.loop:
            zt = self.layer(zt, p, cos, sin)
        delta = zt - z if c["topology"] == "residual" else zt
        if c["up"] == "copy":
            u = delta[:, :, None, :].expand(B, J, g, d)
        else:
            beta = torch.softmax(F.linear(delta, self.alloc[t]).float(), dim=-1).to(delta.dtype)
            u = g * beta[..., None] * delta[:, :, None, :]
        u = u.reshape(B, J * g, d)[:, w:w + L]
        e = F.pad(u, (0, 0, shift, 0))[:, :L] if shift < L else torch.zeros_like(h)
        return (h if c["topology"] == "residual" else h0) + e

    def forward(self, tokens, targets):
        c = self.cfg
        B, L = tokens.shape
        cos, sin = self.rope_tables(torch.arange(L, device=tokens.device),
                                    c["d_model"] // c["n_heads"], tokens.device)
        h = self.tok_emb[tokens]
        for p in self.pre:
            h = self.layer(h, p, cos, sin)
        h0 = h
        for t in range(len(c["schedule"])):
            h = self.iteration(h, h0, t)
        for p in self.post:
            h = self.layer(h, p, cos, sin)
        head = self.tok_emb if self.lm_head is None else self.lm_head
        logits = F.linear(self.rmsnorm(h, self.final_norm), head)
        return F.cross_entropy(logits.float().view(B * L, -1), targets.view(-1), ignore_index=-1)


def bench(args):
    V, d, H, Fw, B, L = CASES[args.case]
    cfg = {"vocab_size": V, "d_model": d, "n_heads": H, "d_ff": Fw, "n_pre": 1, "n_loop": 2,
           "n_post": 1, "down": "selfagg", "up": "alloc", "topology": "residual",
           "schedule": [{"g": 8}, {"g": 4}, {"g": 2}, {"g": 1}]}
    torch.manual_seed(1)
    dev = torch.device("cuda")
    model = Spiral(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=True)
    step_fn = model
    if args.graphs:
        step_fn = torch.compile(model, mode="reduce-overhead")
    elif args.compile:
        step_fn = torch.compile(model)
    tokens = torch.randint(0, V, (B, L), device=dev)
    targets = torch.roll(tokens, -1, dims=1)
    targets[:, -1] = -1

    def step():
        if args.graphs:  # a new iteration: the graphs' outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_fn(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(10):  # warm-up (compilation, autotuning, allocator)
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    rates = []
    for _ in range(args.windows):
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        torch.cuda.synchronize()
        rates.append(B * L * args.steps / (time.perf_counter() - start))
    rates.sort()
    mode = "graphs" if args.graphs else "compile" if args.compile else "eager"
    print(f"# windows {args.case} torch-{mode} {rates[0]:.0f} {rates[len(rates) // 2]:.0f} "
          f"{rates[-1]:.0f}")
    # the graphs' memory sits in their own pools, which this count does not see
    peak = float("nan") if args.graphs else torch.cuda.max_memory_allocated() / 1e9
    print(f"# result {args.case} torch-{mode} {rates[-1]:.0f} {peak:.1f} loss {loss.item():.4f}")


def check(args):
    W, meta = read_safetensors(args.weights)
    cfg = json.loads(meta["config"])
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = Spiral(cfg)
    model.load_spiral(W)
    model = model.to(dev)
    tokens = np.fromfile(args.tokens, dtype="<u2").astype(np.int64)
    x = torch.from_numpy(tokens[:-1])[None].to(dev)
    y = torch.from_numpy(tokens[1:])[None].to(dev)
    with torch.no_grad():
        loss = model(x, y)
    print(f"loss {loss.item():.7f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--weights", required=True)
    c.add_argument("--tokens", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--case", choices=sorted(CASES), required=True)
    modes = b.add_mutually_exclusive_group()
    modes.add_argument("--compile", action="store_true")
    modes.add_argument("--graphs", action="store_true")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--windows", type=int, default=5)
    args = ap.parse_args()
    check(args) if args.cmd == "check" else bench(args)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Independent reference implementation of the SpiralFormer forward pass.

Written only from docs/model.md (the model definition), never from
spiral's C sources, so that the two can be cross-checked.  Python 3 + numpy;
all arithmetic in float64 (weights are stored as float32 and read back into
float64, so both implementations see identical weights).

Subcommands:
  make-weights --config-json JSON --seed S --out w.safetensors
  make-tokens  --vocab V --n N --seed S --out t.bin        (uint16 LE)
  forward      --weights w.safetensors --tokens t.bin [--logits out.npy]
               model on tokens[:-1]; writes (N-1, V) float32 logits and
               prints "loss <mean next-token cross-entropy in nats>"
  compare      --a x.npy --b y.npy --tol T                 (exit 1 if max|a-b| > T)
  compare-loss --ref X --output FILE --tol T  (FILE: spiral's stdout; the
               number after "loss" on the first line mentioning it)
  selftest     self-checks of this implementation (PASS/FAIL lines)
"""

import argparse
import json
import re
import struct
import sys

import numpy as np

# ---------------------------------------------------------------------------
# safetensors (pure Python)
#
# File layout: u64 little-endian N, then N bytes of JSON header
#   {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b, e]}}
# then the data buffer; offsets are relative to the start of the buffer.
# ---------------------------------------------------------------------------

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "U16": np.dtype("<u2"),
}


def read_safetensors(path):
    """Returns (tensors: dict name -> float64 ndarray, metadata: dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds file size")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        dt = info["dtype"]
        shape = tuple(info["shape"])
        b, e = info["data_offsets"]
        if dt == "BF16":
            u = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif dt in _DTYPES:
            arr = np.frombuffer(data[b:e], dtype=_DTYPES[dt])
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        count = int(np.prod(shape)) if shape else 1
        if arr.size != count:
            raise ValueError(f"{path}: tensor {name}: {arr.size} elements, shape {shape}")
        tensors[name] = arr.reshape(shape).astype(np.float64)
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes every tensor as F32 (little endian), sorted by name."""
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(np.asarray(tensors[name], dtype="<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((-len(hb)) % 8)          # pad so the data is 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

def normalize_config(cfg):
    """Fills defaults (offset 0, shift g-1, rope_base 10000, norm_eps 1e-5)."""
    c = dict(cfg)
    c.setdefault("rope_base", 10000.0)
    c.setdefault("norm_eps", 1e-5)
    c.setdefault("tie_embeddings", True)
    c.setdefault("down", "mean")
    c.setdefault("up", "copy")
    c.setdefault("topology", "residual")
    c.setdefault("mesh_slots", 4)
    sched = []
    for it in c["schedule"]:
        g = int(it["g"])
        w = int(it.get("offset", 0))
        s = int(it.get("shift", g - 1))
        if g < 1:
            raise ValueError(f"schedule: g must be >= 1, got {g}")
        if not 0 <= w < g:
            raise ValueError(f"schedule: offset must be in [0, g), got {w} for g={g}")
        if s < 0:
            raise ValueError(f"schedule: shift must be >= 0, got {s}")
        sched.append({"g": g, "offset": w, "shift": s})
    c["schedule"] = sched
    if c["down"] not in ("mean", "selfagg"):
        raise ValueError(f"down: unknown mode {c['down']!r}")
    if c["up"] not in ("copy", "alloc"):
        raise ValueError(f"up: unknown mode {c['up']!r}")
    if c["topology"] not in ("residual", "anchor", "mesh"):
        raise ValueError(f"topology: unknown value {c['topology']!r}")
    if not 2 <= int(c["mesh_slots"]) <= 64:
        raise ValueError(f"mesh_slots: expected 2..64, got {c['mesh_slots']}")
    if c["d_model"] % c["n_heads"] != 0 or (c["d_model"] // c["n_heads"]) % 2:
        raise ValueError("d_model / n_heads must be an even integer (RoPE half split)")
    return c


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------

def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def silu(x):
    return x / (1.0 + np.exp(-x))


def rmsnorm(x, gain, eps):
    # y = x / sqrt(mean(x^2) + eps) * gain   (per row)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * gain


def rope(x, pos, base):
    # Half-split RoPE on x of shape (n, dh): x1 = first dh/2 dims, x2 = last dh/2;
    # freq_m = base^(-2m/dh); angle = p * freq_m;
    # out = [x1 cos - x2 sin, x1 sin + x2 cos].
    dh = x.shape[1]
    half = dh // 2
    m = np.arange(half, dtype=np.float64)
    freq = base ** (-2.0 * m / dh)
    ang = np.asarray(pos, dtype=np.float64)[:, None] * freq[None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    x1, x2 = x[:, :half], x[:, half:]
    return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=1)


def linear(x, W):
    # torch.nn.Linear convention: W is [out, in], y = x W^T
    return x @ W.T


def attention(x, W, pre, pos, cfg):
    # q, k, v = x Wq^T, x Wk^T, x Wv^T; per head k (columns [k*dh, (k+1)*dh)):
    #   RoPE on q_k, k_k at positions pos;
    #   A = softmax(q_k k_k^T / sqrt(dh)) with causal mask (row j sees cols <= j);
    #   out_k = A v_k; heads concatenated, then times Wo^T.
    n, d = x.shape
    H = cfg["n_heads"]
    dh = d // H
    q = linear(x, W[pre + ".attn.wq.weight"])
    k = linear(x, W[pre + ".attn.wk.weight"])
    v = linear(x, W[pre + ".attn.wv.weight"])
    mask = np.tril(np.ones((n, n), dtype=bool))
    out = np.zeros((n, d))
    for hd in range(H):
        cols = slice(hd * dh, (hd + 1) * dh)
        qh = rope(q[:, cols], pos, cfg["rope_base"])
        kh = rope(k[:, cols], pos, cfg["rope_base"])
        scores = qh @ kh.T / np.sqrt(dh)
        scores = np.where(mask, scores, -np.inf)
        out[:, cols] = softmax(scores, axis=1) @ v[:, cols]
    return linear(out, W[pre + ".attn.wo.weight"])


def mlp(x, W, pre):
    # SwiGLU: W2 (silu(W1 x) * (W3 x))
    a = silu(linear(x, W[pre + ".mlp.w1.weight"]))
    b = linear(x, W[pre + ".mlp.w3.weight"])
    return linear(a * b, W[pre + ".mlp.w2.weight"])


def layer(x, W, pre, pos, cfg):
    # Pre-norm block: x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x))
    eps = cfg["norm_eps"]
    x = x + attention(rmsnorm(x, W[pre + ".attn_norm.weight"], eps), W, pre, pos, cfg)
    x = x + mlp(rmsnorm(x, W[pre + ".mlp_norm.weight"], eps), W, pre)
    return x


def stack(x, W, kind, n_layers, pos, cfg):
    for l in range(n_layers):
        x = layer(x, W, f"{kind}.{l}", pos, cfg)
    return x


# ---------------------------------------------------------------------------
# One iteration of the loop (docs/model.md, steps 1-7)
# ---------------------------------------------------------------------------

def chunks(L, g, w):
    """Step 1: pi(i) = floor((i + w) / g), rho(i) = (i + w) mod g, J = pi(L-1)+1."""
    i = np.arange(L)
    pi = (i + w) // g
    rho = (i + w) % g
    J = int(pi[L - 1]) + 1
    return pi, rho, J


def iteration(h, h0, W, t, cfg, rec=None, mem=None):
    """h(t) -> h(t+1). Under topology mesh, mem is the list of memory slots
    (each (L, d)), updated in place."""
    L, d = h.shape
    it = cfg["schedule"][t]
    g, w, s = it["g"], it["offset"], it["shift"]

    # 1. chunks
    pi, rho, J = chunks(L, g, w)

    # 2. down-scaling: z_j from the members of chunk j that exist
    z = np.zeros((J, d))
    for j in range(J):
        members = np.nonzero(pi == j)[0]
        hm = h[members]
        if cfg["down"] == "mean":
            z[j] = hm.mean(axis=0)                     # z_j = mean_i h_i
        else:
            a = W[f"iter.{t}.down.score"]
            c = hm @ a                                 # c_i = a_t . h_i
            alpha = softmax(c)                         # over the chunk's members
            z[j] = alpha @ hm                          # z_j = sum_i alpha_i h_i

    # 3. core on latents, causal over j; latent j at the position of its
    #    last member: min((j+1) g - w - 1, L - 1)
    zpos = np.minimum((np.arange(J) + 1) * g - w - 1, L - 1)
    zt = stack(z, W, "loop", cfg["n_loop"], zpos, cfg)

    # 4. step output per latent
    if cfg["topology"] in ("residual", "mesh"):
        delta = zt - z                                 # delta_j = z~_j - z_j
    else:
        delta = zt                                     # delta_j = z~_j

    # 5. up-scaling to token i of chunk j = pi(i), slot rho(i)
    if cfg["up"] == "copy":
        u = delta[pi]                                  # u_i = delta_j
    else:
        Wt = W[f"iter.{t}.up.alloc"]                   # (g, d)
        beta = softmax(delta @ Wt.T, axis=1)           # beta_j = softmax(W_t delta_j), (J, g)
        u = g * beta[pi, rho][:, None] * delta[pi]     # u_i = g beta_{j,rho} delta_j

    # 6. causal shift: e_i = u_{i-s} for i >= s, else 0
    e = np.zeros((L, d))
    if s < L:
        e[s:] = u[:L - s]

    if rec is not None:
        rec.append({"z": z, "zt": zt, "zpos": zpos, "delta": delta, "u": u, "e": e})

    # 7. state update
    if cfg["topology"] == "residual":
        return h + e                                   # h(t+1) = h(t) + e
    if cfg["topology"] == "anchor":
        return h0 + e                                  # h(t+1) = h(0) + e
    # mesh: write e into the slots, then read the state from them
    S = len(mem)
    wr = softmax(e @ W[f"iter.{t}.mesh.write"].T + W[f"iter.{t}.mesh.write_bias"], axis=1)
    for b in range(S):
        mem[b] = mem[b] + wr[:, b:b + 1] * e           # m_b,i += w_{i,b} e_i
    rd = softmax(e @ W[f"iter.{t}.mesh.read"].T + W[f"iter.{t}.mesh.read_bias"], axis=1)
    if rec is not None:
        rec[-1].update({"mem": [m.copy() for m in mem], "write": wr, "read": rd})
    return S * sum(rd[:, b:b + 1] * mem[b] for b in range(S))   # h = S sum_b r_b m_b


def forward(W, cfg, tokens, rec=None):
    """Logits (L, V) for the L = len(tokens) input tokens."""
    cfg = normalize_config(cfg)
    tokens = np.asarray(tokens, dtype=np.int64)
    L = len(tokens)
    pos = np.arange(L)
    h = W["tok_emb.weight"][tokens]                          # embed(x)
    h = stack(h, W, "pre", cfg["n_pre"], pos, cfg)           # h(0) = f_pre(embed(x))
    h0 = h
    mem = None
    if cfg["topology"] == "mesh":                            # m_0 = h(0), m_b = 0
        mem = [h0.copy()] + [np.zeros_like(h0) for _ in range(cfg["mesh_slots"] - 1)]
    for t in range(len(cfg["schedule"])):                    # T iterations
        h = iteration(h, h0, W, t, cfg, rec, mem)
    h = stack(h, W, "post", cfg["n_post"], pos, cfg)         # f_post(h(T))
    hn = rmsnorm(h, W["final_norm.weight"], cfg["norm_eps"])
    head = W["tok_emb.weight"] if cfg["tie_embeddings"] else W["lm_head.weight"]
    return hn @ head.T                                       # logits = norm(h) E^T


def mean_xent(W, cfg, tokens):
    """Mean next-token cross-entropy (nats): model on tokens[:-1], targets tokens[1:]."""
    tokens = np.asarray(tokens, dtype=np.int64)
    logits = forward(W, cfg, tokens[:-1])
    return xent(logits, tokens[1:]), logits


def xent(logits, targets):
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(len(targets)), targets]))


# ---------------------------------------------------------------------------
# Random weights
# ---------------------------------------------------------------------------

def make_weights(cfg, seed):
    """Random weights (float32-representable values, returned in float64)."""
    c = normalize_config(cfg)
    rng = np.random.default_rng(seed)
    d, F, V = c["d_model"], c["d_ff"], c["vocab_size"]
    W = {}

    # std 0.25: large enough that every weight matters, small enough that the
    # random network is not chaotic (at 0.3 some configurations amplify
    # float32 rounding in spiral to ~3e-4, above the comparison tolerance).
    def mat(*shape, std=0.25):
        return rng.normal(0.0, std, size=shape)

    def gain(n):
        return 1.0 + 0.1 * rng.normal(size=n)

    W["tok_emb.weight"] = mat(V, d, std=1.0)
    W["final_norm.weight"] = gain(d)
    if not c["tie_embeddings"]:
        W["lm_head.weight"] = mat(V, d)
    for kind, n in (("pre", c["n_pre"]), ("loop", c["n_loop"]), ("post", c["n_post"])):
        for l in range(n):
            p = f"{kind}.{l}"
            W[p + ".attn_norm.weight"] = gain(d)
            for m in ("wq", "wk", "wv", "wo"):
                W[p + f".attn.{m}.weight"] = mat(d, d)
            W[p + ".mlp_norm.weight"] = gain(d)
            W[p + ".mlp.w1.weight"] = mat(F, d)
            W[p + ".mlp.w3.weight"] = mat(F, d)
            W[p + ".mlp.w2.weight"] = mat(d, F)
    for t, it in enumerate(c["schedule"]):
        if c["down"] == "selfagg":
            W[f"iter.{t}.down.score"] = mat(d, std=0.5)
        if c["up"] == "alloc":
            W[f"iter.{t}.up.alloc"] = mat(it["g"], d, std=0.3)
        if c["topology"] == "mesh":
            S = c["mesh_slots"]
            for router in ("write", "read"):
                W[f"iter.{t}.mesh.{router}"] = mat(S, d, std=0.5)
                W[f"iter.{t}.mesh.{router}_bias"] = mat(S, std=0.5)
    # round to float32 so the in-memory weights equal what the file holds
    return {k: v.astype(np.float32).astype(np.float64) for k, v in W.items()}


def save_weights(path, W, cfg):
    write_safetensors(path, W, {"config": json.dumps(cfg)})


def load_weights(path):
    W, meta = read_safetensors(path)
    if "config" not in meta:
        raise ValueError(f"{path}: no __metadata__ config")
    return W, json.loads(meta["config"])


def read_tokens(path):
    return np.fromfile(path, dtype="<u2").astype(np.int64)


# ---------------------------------------------------------------------------
# Self-checks
# ---------------------------------------------------------------------------

BASE = {"vocab_size": 32, "d_model": 16, "n_heads": 2, "d_ff": 24,
        "n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": True,
        "rope_base": 10000, "norm_eps": 1e-5,
        "down": "selfagg", "up": "alloc", "topology": "residual",
        "schedule": [{"g": 8}, {"g": 4}, {"g": 2}, {"g": 1}]}


def cfgv(**kw):
    c = dict(BASE)
    c.update(kw)
    return c


def selftest():
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(("PASS " if ok else "FAIL ") + name + (f"  ({detail})" if detail else ""))

    rng = np.random.default_rng(1234)

    # --- safetensors round trip -------------------------------------------
    import os
    import tempfile
    cfg = cfgv(tie_embeddings=False)
    W = make_weights(cfg, 7)
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "w.safetensors")
        save_weights(p, W, cfg)
        W2, cfg2 = load_weights(p)
        with open(p, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        ok = (cfg2 == cfg and set(W2) == set(W)
              and all(np.array_equal(W[k], W2[k]) and W[k].shape == W2[k].shape for k in W)
              and n % 8 == 0)
        check("safetensors round trip", ok)
        names_ok = ("lm_head.weight" in W and "iter.3.up.alloc" in W
                    and W["iter.0.up.alloc"].shape == (8, 16)
                    and W["iter.3.down.score"].shape == (16,)
                    and W["loop.1.mlp.w2.weight"].shape == (16, 24)
                    and W["pre.0.mlp.w1.weight"].shape == (24, 16))
        check("weight names and shapes", names_ok)

    # --- causality: perturbing tokens > i leaves logits <= i unchanged ------
    causal_cfgs = [
        cfgv(),
        cfgv(schedule=[{"g": 4, "offset": 1}, {"g": 3, "offset": 2}, {"g": 1}],
             down="mean", up="copy"),
        cfgv(schedule=[{"g": 3, "offset": 2}, {"g": 2, "offset": 1}], topology="anchor"),
        cfgv(schedule=[{"g": 8, "offset": 5, "shift": 8}, {"g": 4, "shift": 4}],
             down="mean", up="alloc", topology="anchor"),
        cfgv(schedule=[{"g": 2, "offset": 1, "shift": 1}, {"g": 1, "shift": 0}],
             n_pre=0, n_post=0),
        cfgv(schedule=[{"g": 8, "offset": 7}, {"g": 8, "offset": 3}], up="copy"),
        cfgv(topology="mesh", mesh_slots=3,
             schedule=[{"g": 4, "offset": 1}, {"g": 2, "shift": 3}, {"g": 1}]),
        cfgv(topology="mesh", mesh_slots=2, schedule=[{"g": 1}] * 3, down="mean", up="copy"),
    ]
    for ci, c in enumerate(causal_cfgs):
        W = make_weights(c, 100 + ci)
        L = 37
        toks = rng.integers(0, 32, size=L)
        base = forward(W, c, toks)
        worst = 0.0
        changed_after = True
        for i in [0, 1, 2, 5, 7, 8, 13, 20, 31, 35]:
            t2 = toks.copy()
            t2[i + 1:] = rng.integers(0, 32, size=L - i - 1)
            t2[i + 1] = (toks[i + 1] + 1) % 32          # make sure something changed
            out = forward(W, c, t2)
            worst = max(worst, float(np.max(np.abs(out[:i + 1] - base[:i + 1]))))
            if np.max(np.abs(out[i + 1:] - base[i + 1:])) == 0:
                changed_after = False
        check(f"causality config {ci}", worst <= 1e-12 and changed_after,
              f"max diff at <= i: {worst:.3g}")

    # --- latent position = token position of the chunk's last member --------
    ok = True
    for L in (1, 5, 37, 40):
        for g in range(1, 9):
            for w in range(g):
                pi, rho, J = chunks(L, g, w)
                last = np.array([np.max(np.nonzero(pi == j)[0]) for j in range(J)])
                zpos = np.minimum((np.arange(J) + 1) * g - w - 1, L - 1)
                if not (np.array_equal(last, zpos) and set(pi) == set(range(J))):
                    ok = False
    check("latent positions = last member", ok)

    # --- g = 1 residual schedule == stacking the core layers ---------------
    toks = rng.integers(0, 32, size=30)
    for down, up in (("mean", "copy"), ("selfagg", "alloc")):
        c = cfgv(schedule=[{"g": 1}] * 3, down=down, up=up)
        W = make_weights(c, 5)
        cc = normalize_config(c)
        pos = np.arange(30)
        h = stack(W["tok_emb.weight"][toks], W, "pre", 1, pos, cc)
        for _ in range(3):
            h = stack(h, W, "loop", 2, pos, cc)
        h = stack(h, W, "post", 1, pos, cc)
        direct = rmsnorm(h, W["final_norm.weight"], 1e-5) @ W["tok_emb.weight"].T
        diff = float(np.max(np.abs(forward(W, c, toks) - direct)))
        check(f"g=1 residual == stacked core ({down}/{up})", diff <= 1e-10, f"{diff:.3g}")

    # --- g = 1 anchor: h(t+1) = h(0) + f_loop(h(t)) ------------------------
    c = cfgv(schedule=[{"g": 1}] * 3, topology="anchor", down="mean", up="copy")
    W = make_weights(c, 6)
    cc = normalize_config(c)
    pos = np.arange(30)
    h0 = stack(W["tok_emb.weight"][toks], W, "pre", 1, pos, cc)
    h = h0
    for _ in range(3):
        h = h0 + stack(h, W, "loop", 2, pos, cc)
    h = stack(h, W, "post", 1, pos, cc)
    direct = rmsnorm(h, W["final_norm.weight"], 1e-5) @ W["tok_emb.weight"].T
    diff = float(np.max(np.abs(forward(W, c, toks) - direct)))
    check("g=1 anchor == h0 + stacked core", diff <= 1e-10, f"{diff:.3g}")

    # --- dense baseline == n_loop distinct layers in sequence, untied -------
    c = cfgv(n_pre=0, n_loop=3, n_post=0, schedule=[{"g": 1}], tie_embeddings=False,
             down="mean", up="copy")
    W = make_weights(c, 8)
    cc = normalize_config(c)
    h = W["tok_emb.weight"][toks]
    for l in range(3):
        h = layer(h, W, f"loop.{l}", pos, cc)
    direct = rmsnorm(h, W["final_norm.weight"], 1e-5) @ W["lm_head.weight"].T
    diff = float(np.max(np.abs(forward(W, c, toks) - direct)))
    check("dense baseline == 3 layers, untied head", diff <= 1e-10, f"{diff:.3g}")

    # --- alloc with zero W == copy; selfagg with zero score == mean --------
    for sched in ([{"g": 8}, {"g": 4, "offset": 1}, {"g": 3, "offset": 2, "shift": 3}],
                  [{"g": 2, "offset": 1}, {"g": 1}]):
        c_alloc = cfgv(schedule=sched, up="alloc", down="mean")
        W = make_weights(c_alloc, 9)
        for t in range(len(sched)):
            W[f"iter.{t}.up.alloc"] = np.zeros_like(W[f"iter.{t}.up.alloc"])
        c_copy = cfgv(schedule=sched, up="copy", down="mean")
        diff = float(np.max(np.abs(forward(W, c_alloc, toks) - forward(W, c_copy, toks))))
        check(f"alloc(W=0) == copy, schedule {sched}", diff <= 1e-12, f"{diff:.3g}")
        c_sa = cfgv(schedule=sched, up="copy", down="selfagg")
        W2 = dict(W)
        for t in range(len(sched)):
            W2[f"iter.{t}.down.score"] = np.zeros(16)
        diff = float(np.max(np.abs(forward(W2, c_sa, toks) - forward(W, c_copy, toks))))
        check(f"selfagg(a=0) == mean, schedule {sched}", diff <= 1e-12, f"{diff:.3g}")

    # --- step-level checks on one iteration, written elementwise -----------
    for sched in ([{"g": 4, "offset": 1}], [{"g": 3, "offset": 2, "shift": 3}],
                  [{"g": 8, "offset": 3, "shift": 9}]):
        c = cfgv(schedule=sched, n_pre=0, n_post=0, down="selfagg", up="alloc",
                 topology="residual")
        cc = normalize_config(c)
        W = make_weights(c, 11)
        L = 29
        h = rng.normal(size=(L, 16))
        rec = []
        out = iteration(h, h, W, 0, cc, rec)
        g, w, s = cc["schedule"][0]["g"], cc["schedule"][0]["offset"], cc["schedule"][0]["shift"]
        a = W["iter.0.down.score"]
        A = W["iter.0.up.alloc"]
        r = rec[0]
        ok = True
        # chunk j covers tokens max(0, j*g-w) .. min(L-1, (j+1)*g-w-1)
        J = (L - 1 + w) // g + 1
        for j in range(J):
            lo, hi = max(0, j * g - w), min(L - 1, (j + 1) * g - w - 1)
            mem = list(range(lo, hi + 1))
            sc = np.array([a @ h[i] for i in mem])
            al = np.exp(sc - sc.max())
            al /= al.sum()
            zj = sum(al[k] * h[i] for k, i in enumerate(mem))
            ok &= np.allclose(zj, r["z"][j], atol=1e-12)
            ok &= r["zpos"][j] == hi
        for i in range(L):
            if i < s:
                ok &= np.all(out[i] == h[i])
                continue
            src = i - s
            j = (src + w) // g
            slot = (src + w) % g
            dj = r["zt"][j] - r["z"][j]
            lg = A @ dj
            b = np.exp(lg - lg.max())
            b /= b.sum()
            ok &= np.allclose(out[i], h[i] + g * b[slot] * dj, atol=1e-12)
        check(f"iteration elementwise, schedule {sched}", bool(ok))

    # --- mesh: zero routers == residual; the slots sum to h(0) + sum of e ---
    for sched in ([{"g": 8}, {"g": 4, "offset": 1}, {"g": 3, "offset": 2, "shift": 3}, {"g": 1}],
                  [{"g": 1}] * 3):
        c_mesh = cfgv(schedule=sched, topology="mesh", mesh_slots=3)
        W = make_weights(c_mesh, 13)
        rec = []
        forward(W, c_mesh, toks, rec)
        h0 = stack(W["tok_emb.weight"][toks], W, "pre", 1, np.arange(len(toks)), normalize_config(c_mesh))
        total = h0 + sum(r["e"] for r in rec)
        diff = float(np.max(np.abs(sum(rec[-1]["mem"]) - total)))
        check(f"mesh slots sum to h(0) + sum e, schedule {sched}", diff <= 1e-10, f"{diff:.3g}")
        for t in range(len(sched)):
            for k in ("write", "read", "write_bias", "read_bias"):
                W[f"iter.{t}.mesh.{k}"] = np.zeros_like(W[f"iter.{t}.mesh.{k}"])
        c_res = cfgv(schedule=sched, topology="residual")
        diff = float(np.max(np.abs(forward(W, c_mesh, toks) - forward(W, c_res, toks))))
        check(f"mesh(zero routers) == residual, schedule {sched}", diff <= 1e-10, f"{diff:.3g}")

    # --- RoPE: attention depends only on relative positions ----------------
    c = normalize_config(cfgv())
    W = make_weights(cfgv(), 12)
    x = rng.normal(size=(12, 16))
    p = np.arange(12) * 3
    a1 = attention(x, W, "loop.0", p, c)
    a2 = attention(x, W, "loop.0", p + 17, c)
    d1 = float(np.max(np.abs(a1 - a2)))
    a3 = attention(x, W, "loop.0", p + 1, c)
    ok = d1 <= 1e-10 and not np.allclose(a1, attention(x, W, "loop.0", np.arange(12), c))
    check("RoPE relative-position invariance", ok, f"{d1:.3g}")
    del a3
    # RoPE half-split formula on a unit vector: dim 0 at angle p rotates into dim dh/2
    e0 = np.zeros((1, 8))
    e0[0, 0] = 1.0
    r0 = rope(e0, np.array([0.7]), 10000.0)
    exp0 = np.zeros(8)
    exp0[0], exp0[4] = np.cos(0.7), np.sin(0.7)
    e1 = np.zeros((1, 8))
    e1[0, 5] = 1.0                                # x2 component of m = 1
    r1 = rope(e1, np.array([2.0]), 10000.0)
    ang = 2.0 * 10000.0 ** (-2.0 / 8)
    exp1 = np.zeros(8)
    exp1[1], exp1[5] = -np.sin(ang), np.cos(ang)
    check("RoPE half-split layout", np.allclose(r0[0], exp0) and np.allclose(r1[0], exp1))

    # --- cross-entropy against a direct per-position loop -------------------
    lg = rng.normal(size=(9, 32)) * 5
    tg = rng.integers(0, 32, size=9)
    direct = np.mean([-np.log(np.exp(lg[i, tg[i]]) / np.exp(lg[i]).sum()) for i in range(9)])
    check("cross-entropy", abs(direct - xent(lg, tg)) <= 1e-12)

    npass = sum(1 for r in results if r)
    nfail = len(results) - npass
    print(f"selftest: {npass} ok, {nfail} bad")
    return nfail == 0


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make-weights")
    p.add_argument("--config-json", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("make-tokens")
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("forward")
    p.add_argument("--weights", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--logits")
    p = sub.add_parser("compare")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--tol", type=float, default=1e-4)
    p = sub.add_parser("compare-loss")
    p.add_argument("--ref", type=float, required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--tol", type=float, default=1e-4)
    sub.add_parser("selftest")
    a = ap.parse_args(argv)

    if a.cmd == "make-weights":
        cfg = json.loads(a.config_json)
        save_weights(a.out, make_weights(cfg, a.seed), cfg)
        return 0
    if a.cmd == "make-tokens":
        rng = np.random.default_rng(a.seed)
        rng.integers(0, a.vocab, size=a.n).astype("<u2").tofile(a.out)
        return 0
    if a.cmd == "forward":
        W, cfg = load_weights(a.weights)
        toks = read_tokens(a.tokens)
        if len(toks) < 2:
            print("forward: need at least 2 tokens", file=sys.stderr)
            return 1
        loss, logits = mean_xent(W, cfg, toks)
        if a.logits:
            np.save(a.logits, logits.astype(np.float32))
        print(f"loss {loss:.10f}")
        return 0
    if a.cmd == "compare":
        x = np.load(a.a).astype(np.float64)
        y = np.load(a.b).astype(np.float64)
        if x.shape != y.shape:
            print(f"shape mismatch: {x.shape} vs {y.shape}")
            return 1
        diff = np.abs(x - y)
        if not np.all(np.isfinite(y)) or not np.all(np.isfinite(x)):
            print("non-finite values")
            return 1
        md = float(diff.max()) if diff.size else 0.0
        if md > a.tol:
            worst_rows = np.nonzero(diff.max(axis=1) > a.tol)[0] if diff.ndim == 2 else []
            print(f"max abs diff {md:.3e} > tol {a.tol:g}"
                  + (f"; positions over tol: {list(map(int, worst_rows))}"
                     if len(worst_rows) else ""))
            return 1
        print(f"max abs diff {md:.3e}")
        return 0
    if a.cmd == "compare-loss":
        with open(a.output, errors="replace") as f:
            text = f.read()
        num = None
        for line in text.splitlines():
            m = re.search(r"loss\D*?([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)",
                          line, re.IGNORECASE)
            if m:
                num = float(m.group(1))
                break
        if num is None:
            print("no loss in spiral output")
            return 1
        diff = abs(num - a.ref)
        print(f"loss ref {a.ref:.8f} spiral {num:.8f} diff {diff:.3e}")
        return 0 if diff <= a.tol else 1
    if a.cmd == "selftest":
        return 0 if selftest() else 1
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

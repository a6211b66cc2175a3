"""No state, hook, cached tensor or autograd graph survives where it should not (issue #7).

Covered: every neuron family of the zoo x {batches of another size / spatial shape, interleaved
instances, single-step state and reset, dtype / device moves and state_dict, saved tensors of the
graph}; the models (SpikingMLP, SpikingCNN, PLIF nets, spiking ResNet / DS-ResNet) x {batches,
interleaved training, fit twice in one process, eval/train switches, float64}; monitors and hooks;
the output buffer pool of the CPU kernels.
"""
import copy
import gc
import weakref

import pytest
import torch
import torch.nn as nn

import snnedu
from snnedu import IF, LIF, MLF, PLIF, PMLF, PMLF3, Monitor

from neuron_cases import CASES, is_lazy
from snnedu.kernels import cpu as cpu_kernels

@pytest.fixture(autouse=True)
def _one_thread():
    """Nothing tested here depends on the thread count (tests/test_determinism.py covers threads), and
    on a busy 2-core machine idle-spinning worker threads make these small calls ten times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- the neuron zoo ------------------------------------------------------------------------------------
# name -> (factory, lazily shaped per-neuron parameters: the sample shape cannot change): every exported
# neuron family in several settings (tests/neuron_cases.py), and a recording one (the reference backend)
ZOO = {name: (make, is_lazy(make)) for name, make in {**CASES, "IF-record": lambda: IF(record=True)}.items()}
SAMPLE = (2, 3, 4)          # a conv-like sample [C, H, W]
OTHER_SAMPLE = (2, 5, 2)


def _x(T, B, sample, scale=1.5, grad=True):
    x = torch.rand(T, B, *sample) * scale
    return x.requires_grad_(grad)


def _fresh_like(make, used):
    """A new instance with ``used``'s parameters (lazy ones are shaped by the state_dict)."""
    fresh = make()
    fresh.load_state_dict(used.state_dict())
    return fresh


def _run(neuron, x):
    """Forward and backward with a weighted loss; returns (out, x.grad, {param name: grad})."""
    neuron.zero_grad(set_to_none=True)
    out = neuron(x)
    (out * torch.linspace(0.5, 1.5, out.shape[-1])).sum().backward()
    grads = {n: p.grad.clone() for n, p in neuron.named_parameters() if p.grad is not None}
    g, x.grad = x.grad, None
    return out.detach(), g, grads


def _assert_same(a, b):
    out_a, gx_a, gp_a = a
    out_b, gx_b, gp_b = b
    assert torch.equal(out_a, out_b)
    assert torch.equal(gx_a, gx_b)
    assert gp_a.keys() == gp_b.keys()
    for k in gp_a:
        assert torch.equal(gp_a[k], gp_b[k]), k


@pytest.mark.parametrize("name", list(ZOO))
def test_neuron_batches_do_not_leak(name):
    """Batch A then batch B (other B, T and, where allowed, spatial size) == a fresh neuron on B,
    values and gradients; a step after a multi-step call starts from rest; traces are B's."""
    make, lazy = ZOO[name]
    torch.manual_seed(1)
    used = make()
    _run(used, _x(5, 3, SAMPLE))
    xb = _x(4, 6, SAMPLE if lazy else OTHER_SAMPLE)
    got = _run(used, xb)
    fresh = _fresh_like(make, used)
    _assert_same(got, _run(fresh, xb.detach().clone().requires_grad_()))
    assert used.v is None
    if used.record:
        assert used.h_seq.shape[:2] == (4, 6) and not used.h_seq.requires_grad
    # single step right after a multi-step call: from rest, like a fresh neuron
    x0 = xb[0].detach()
    assert torch.equal(used.step(x0), _fresh_like(make, used).step(x0))


@pytest.mark.parametrize("name", list(ZOO))
def test_interleaved_instances_equal_each_alone(name):
    """Two instances (different parameters) used in turn, multi-step and step by step, compute what
    each computes alone."""
    make, _ = ZOO[name]
    torch.manual_seed(2)
    a, b = make(), make()
    for m in (a, b):                       # shape any lazy parameter
        m(torch.zeros(1, 1, *SAMPLE))
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.3)
    alone = copy.deepcopy(a)
    xs = [_x(3, 2, SAMPLE, grad=False) for _ in range(3)]
    ys = [_x(3, 4, SAMPLE, grad=False) for _ in range(3)]
    mixed = []
    for x, y in zip(xs, ys):
        mixed.append(a(x))
        b(y)
    for t in range(3):                     # step by step: a's potential must not see b's input
        mixed.append(a.step(xs[0][t]))
        b.step(ys[1][t])
    ref = [alone(x) for x in xs] + [alone.step(xs[0][t]) for t in range(3)]
    for u, v in zip(mixed, ref):
        assert torch.equal(u, v)


class _Box:
    def __init__(self, t):
        self.t = t


def _track_saved():
    """A saved-tensors hook pair that records a weak reference to every tensor the graph saves."""
    boxes = []

    def pack(t):
        box = _Box(t.detach())    # detached: storing the tensor itself would make a reference cycle
        boxes.append(weakref.ref(box))
        return box

    def unpack(box):
        return box.t
    return boxes, torch.autograd.graph.saved_tensors_hooks(pack, unpack)


def _alive(boxes, collect=True):
    n = sum(b() is not None for b in boxes)
    if n and collect:      # freed by reference counting as a rule; let the cycle collector try too
        gc.collect()
        n = sum(b() is not None for b in boxes)
    return n


@pytest.mark.parametrize("name", list(ZOO))
def test_step_state_lives_until_reset_and_its_graph_dies_with_it(name):
    make, _ = ZOO[name]
    torch.manual_seed(3)
    neuron = make()
    net = nn.Sequential(nn.Identity(), neuron)
    x = _x(3, 4, SAMPLE)
    boxes, hooks = _track_saved()
    with hooks:
        for t in range(3):
            neuron.step(x[t])
    assert neuron.v is not None and _alive(boxes, collect=False) > 0     # the step state holds the graph ...
    with pytest.raises(snnedu.StateError):
        neuron.step(torch.rand(5, *SAMPLE))              # ... and its batch size
    snnedu.reset(net)
    assert neuron.v is None and neuron.h_seq is None and neuron.v_seq is None
    assert _alive(boxes) == 0                             # reset frees the graph
    y = _x(2, 5, SAMPLE, grad=False)
    fresh = _fresh_like(make, neuron)
    assert all(torch.equal(neuron.step(y[t]), fresh.step(y[t])) for t in range(2))
    # a multi-step call after steps starts from rest and leaves no state
    assert torch.equal(neuron(y), fresh(y)) and neuron.v is None


@pytest.mark.parametrize("name", list(ZOO))
def test_no_saved_tensor_outlives_the_output(name):
    """The autograd graph of a multi-step call is freed with its output: nothing of it is cached."""
    make, _ = ZOO[name]
    neuron = make()
    x = _x(4, 3, SAMPLE)
    boxes, hooks = _track_saved()
    with hooks:
        out = neuron(x * 1.0)
    ref = weakref.ref(out)
    assert _alive(boxes, collect=False) > 0
    del out
    assert ref() is None and _alive(boxes) == 0


@pytest.mark.parametrize("name", list(ZOO))
def test_move_and_cast_after_use_and_state_is_not_in_the_state_dict(name):
    make, _ = ZOO[name]
    torch.manual_seed(4)
    neuron = make()
    x = _x(3, 2, SAMPLE)
    neuron(x).sum().backward()
    keys = set(neuron.state_dict())
    v1 = None
    for t in range(2):
        neuron.step(x[t].detach())
        v1 = neuron.v
    assert set(neuron.state_dict()) == keys                     # no state in the state_dict ...
    assert not any(k.split(".")[-1] in ("v", "h_seq", "v_seq") for k in keys)
    neuron.to("cpu").to(torch.float64)
    assert neuron.v.dtype == torch.float64 and torch.equal(neuron.v, v1.double())  # ... but it follows .to
    assert neuron.step(x[2].detach().double()).dtype == torch.float64
    x64 = x.detach().double()
    fresh = _fresh_like(make, neuron).double()
    out = neuron(x64)
    assert out.dtype == torch.float64 and torch.equal(out, fresh(x64))
    assert all(p.dtype == torch.float64 for p in neuron.parameters())


def test_deepcopy_mid_sequence_copies_the_state_without_the_graph():
    lif = PLIF()
    x = _x(3, 2, (4,))
    lif.step(x[0])
    twin = copy.deepcopy(lif)             # the potential is a non-leaf tensor: plain deepcopy would fail
    assert torch.equal(twin.v, lif.v) and twin.v.grad_fn is None and twin.v is not lif.v
    assert torch.equal(twin.step(x[1].detach()), lif.step(x[1].detach()))
    drop = snnedu.SeqDropout(0.5)
    drop.step(torch.ones(2, 3))
    assert torch.equal(copy.deepcopy(drop).mask, drop.mask)


def test_reset_clears_every_stateful_module_of_a_model():
    torch.manual_seed(5)
    net = nn.Sequential(LIF(), snnedu.SeqDropout(0.5), MLF(), PLIF(record=True))
    x = _x(3, 4, (6,), grad=False)
    net(x)
    for t in range(3):
        h = x[t]
        for m in net:
            h = m.step(h)
    assert all(getattr(m, "v", getattr(m, "mask", None)) is not None for m in net)
    snnedu.reset(net)
    assert net[0].v is None and net[1].mask is None and net[2].v is None
    assert net[3].v is None and net[3].h_seq is None
    fresh = copy.deepcopy(net)
    y = _x(2, 7, (6,), grad=False)
    for m, f in zip(net, fresh):
        torch.manual_seed(6)
        a = m.step(y[0])
        torch.manual_seed(6)
        assert torch.equal(a, f.step(y[0]))


# -- models ----------------------------------------------------------------------------------------------
def _static(B, alt=False):
    return torch.rand(B, 1, 28, 28)


def _frames(c, hw, T=3):
    def make(B, alt=False):
        h = hw[1] if alt else hw[0]
        return torch.rand(T + int(alt), B, c, h, h)
    return make


MODELS = {
    "mlp-plif-bn": (lambda: snnedu.SpikingMLP((1, 8, 8), hidden=(16,), n_classes=3, batch_norm=True,
                                              neuron=PLIF), _frames(1, (8, 8))),
    "mlp-stl": (lambda: snnedu.SpikingMLP((1, 8, 8), hidden=(12, 12), n_classes=3, neuron=lambda: LIF.stbp(
        decay=0.5, surrogate="atan", learn_threshold="neuron", threshold_noise=1e-3)), _frames(1, (8, 8))),
    "cnn-lif": (lambda: snnedu.SpikingCNN((1, 8, 8), channels=4, hidden=16, n_classes=3), _frames(1, (8, 8))),
    "plif-static": (lambda: snnedu.PLIFStaticNet("mnist", T=2, channels=4, fc_hidden=16), _static),
    "plif-dvs-per-neuron": (lambda: snnedu.PLIFDVSNet(
        in_channels=2, input_size=16, channels=4, n_down=2, n_classes=3,
        neuron=lambda: PLIF(per_neuron=True, tau_std=0.1, detach_reset=True)), _frames(2, (16, 16))),
    "ds-resnet-mlf": (lambda: snnedu.SpikingResNet((1, 1), (4, 8), neuron=MLF, v_threshold=0.6, in_channels=2,
                                                   n_classes=3), _frames(2, (8, 12))),
    "resnet-pmlf3-shared": (lambda: snnedu.SpikingResNet(
        (1, 1), (4, 8), neuron=PMLF3, v_threshold=0.6, ds=False, share_neuron=True, hidden=8,
        input_norm=True, in_channels=2, n_classes=3), _frames(2, (8, 4))),
}
SPATIAL_OK = {"ds-resnet-mlf", "resnet-pmlf3-shared"}   # global pooling: any H, W


def _build(name, seed=0):
    torch.manual_seed(seed)
    make, inp = MODELS[name]
    net = make()
    snnedu.materialize(net, inp(1))     # shape lazy parameters before copying (no effect otherwise)
    return net


def _train_pass(net, x, seed):
    torch.manual_seed(seed)            # dropout masks
    net.zero_grad(set_to_none=True)
    out = net(x)
    out.float().pow(2).mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def _hooks(net):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in net.modules())


@pytest.mark.parametrize("name", list(MODELS))
def test_model_batches_do_not_leak_and_eval_is_pure(name):
    _, inp = MODELS[name]
    used = _build(name, 1)
    fresh = copy.deepcopy(used)
    _train_pass(used, inp(3), seed=10)
    xb = inp(5, alt=name in SPATIAL_OK)                 # another batch size (and H, W where allowed)
    out, grads = _train_pass(used, xb, seed=11)
    out_f, grads_f = _train_pass(fresh, xb, seed=11)
    assert torch.equal(out, out_f) and grads.keys() == grads_f.keys()
    for k in grads:
        assert torch.equal(grads[k], grads_f[k]), k
    # eval after training passes == a fresh instance with the same weights and statistics
    used.eval()
    other = MODELS[name][0]()
    other.load_state_dict(used.state_dict())
    other.eval()
    xc = inp(2)
    with torch.no_grad():
        before = copy.deepcopy(used.state_dict())
        ref = used(xc)
        assert torch.equal(ref, other(xc))
        used.train()
        used.eval()                                      # a train/eval switch without data changes nothing
        assert torch.equal(used(xc), ref)
    for k, v in used.state_dict().items():              # eval forward passes update nothing
        assert torch.equal(v, before[k]), k
    assert _hooks(used) == 0                            # snnedu installs no hooks of its own
    assert not torch.nn.modules.module._global_forward_hooks
    assert not torch.nn.modules.module._global_backward_hooks


@pytest.mark.parametrize("name", list(MODELS))
def test_models_trained_interleaved_equal_each_trained_alone(name):
    _, inp = MODELS[name]
    a, b = _build(name, 1), _build(name, 2)
    alone = copy.deepcopy(a)
    opts = {id(m): torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (a, b, alone)}
    xs = [inp(3) for _ in range(2)]
    ys = [inp(4) for _ in range(2)]

    def step(m, x, seed):
        _train_pass(m, x, seed)
        opts[id(m)].step()

    for i in range(2):
        step(a, xs[i], 100 + i)   # the global RNG is shared by design: seed each call's dropout
        step(b, ys[i], 200 + i)
    for i in range(2):
        step(alone, xs[i], 100 + i)
    for (k, u), v in zip(a.state_dict().items(), alone.state_dict().values()):
        assert torch.equal(u, v), k


@pytest.mark.parametrize("name", ["cnn-lif", "ds-resnet-mlf", "plif-dvs-per-neuron"])
def test_model_to_float64_after_training_step(name):
    make, inp = MODELS[name]
    net = _build(name, 3)
    _train_pass(net, inp(2), seed=1)
    keys = set(net.state_dict())
    net.to("cpu").to(torch.float64)
    assert set(net.state_dict()) == keys and all(v.dtype in (torch.float64, torch.long)
                                                 for v in net.state_dict().values())
    x = inp(2).double()
    out, _ = _train_pass(net, x, seed=2)
    assert out.dtype == torch.float64 and torch.isfinite(out).all()
    fresh = make()
    fresh.load_state_dict(net.state_dict())
    fresh.double()
    net.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(net(x), fresh(x))


def _task(seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (48,), generator=g)
    x = torch.rand(48, 1, 4, 4, generator=g) * 0.4
    x[:, 0, 0, :] += 0.2 * y.unsqueeze(1)
    return torch.utils.data.TensorDataset(x, y)


def _fit(seed, data_seed):
    torch.manual_seed(seed)
    net = nn.Sequential(snnedu.PoissonEncoder(3), snnedu.SpikingMLP(
        (1, 4, 4), hidden=(10,), n_classes=3, batch_norm=True, neuron=PLIF))
    loader = torch.utils.data.DataLoader(_task(data_seed), batch_size=16, shuffle=True,
                                         generator=torch.Generator().manual_seed(data_seed))
    hist = snnedu.fit(net, loader, loader, epochs=2, lr=0.02, seed=seed, progress=False, verbose=False,
                      device="cpu")
    return net, [{k: v for k, v in row.items() if k != "time_s"} for row in hist]


def test_fit_twice_in_one_process_ends_like_each_alone():
    net_a, hist_a = _fit(0, 0)
    net_b, _ = _fit(1, 1)                 # another model trained in between
    again, hist_again = _fit(0, 0)
    assert hist_a == hist_again
    for (k, u), v in zip(net_a.state_dict().items(), again.state_dict().values()):
        assert torch.equal(u, v), k
    assert not torch.equal(net_a[1].body[1].module.weight, net_b[1].body[1].module.weight)
    assert _hooks(net_a) == 0 and all(getattr(m, "v", None) is None for m in net_a.modules())


def test_no_tensor_accumulates_over_training_steps():
    net = _build("mlp-plif-bn", 4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = _frames(1, (8, 8))(4)

    def live_tensors():
        gc.collect()
        return sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects())

    counts = []
    for i in range(3):
        _train_pass(net, x, seed=i)
        opt.step()
        if i:                       # from the second step on (Adam's state exists), nothing grows
            counts.append(live_tensors())
    assert counts[0] == counts[1]


# -- monitors and hooks ------------------------------------------------------------------------------------
def test_monitor_removes_its_hooks_when_the_block_raises_and_is_collectable():
    net = _build("cnn-lif")
    x = _frames(1, (8, 8))(2)
    neurons = [m for m in net.modules() if isinstance(m, snnedu.BaseNeuron)]
    with pytest.raises(ValueError, match="boom"):
        with Monitor(net, coverage=True) as mon:
            net(x)
            assert _hooks(net) > 0 and all(m.record for m in neurons)
            raise ValueError("boom")
    assert _hooks(net) == 0
    assert all(not m.record and m.h_seq is None for m in neurons)   # coverage's recording undone
    assert mon.n_samples == 2                                      # the statistics stay readable
    ref = weakref.ref(mon)
    del mon
    gc.collect()
    assert ref() is None                                           # the model keeps no reference to it
    assert not torch.nn.modules.module._global_forward_hooks


def test_monitor_close_nesting_and_no_graph_kept():
    net = _build("mlp-plif-bn")
    x = _frames(1, (8, 8))(3)
    outer = Monitor(net).attach()
    assert outer.attach() is outer and _hooks(net) == len(outer._handles)   # attaching twice adds nothing
    with Monitor(net, coverage=True) as inner:
        boxes, hooks = _track_saved()
        with hooks:
            out = net(x)
        del out
        assert _alive(boxes) == 0          # statistics are detached numbers: the graph is not kept
    assert inner.n_samples == 3 and _hooks(net) == len(outer._handles) > 0
    net(x)
    assert outer.n_samples == 6 and inner.n_samples == 3    # only the attached monitor counts
    outer.close()
    outer.close()
    assert _hooks(net) == 0
    net(x)
    assert outer.n_samples == 6


# -- the CPU kernels' output buffer pool -----------------------------------------------------------------
def test_pool_never_hands_out_memory_of_a_live_output():
    """Outputs of >= 32 MiB come from the pool; a returned tensor (and a view of it, and a gradient)
    is never overwritten by later calls of the same size, while dead buffers are reused."""
    pool = cpu_kernels._pool
    T, N = 8, 1 << 20                                # spikes [8, 1, 2^20] float32 = 32 MiB: pooled
    assert T * N * 4 >= pool.min_bytes
    neuron = IF(v_threshold=0.5)
    x1 = torch.rand(T, 1, N, requires_grad=True)
    out1 = neuron(x1)
    keep = out1.clone()
    out1.sum().backward()
    g1, g1_keep = x1.grad, x1.grad.clone()
    view = out1[2:]
    ptr1 = out1.data_ptr()
    del out1
    x2 = torch.rand(T, 1, N, requires_grad=True)
    out2 = neuron(x2)
    assert out2.data_ptr() != ptr1                   # a view of out1 is alive: its buffer is not free
    ptr2 = out2.data_ptr()
    (out2 * 2).sum().backward()
    del out2
    gc.collect()
    out3 = neuron(torch.rand(T, 1, N))               # out2 is dead: its buffer is reused ...
    assert out3.data_ptr() == ptr2
    x3 = torch.rand(T, 1, N, requires_grad=True)
    neuron(x3).sum().backward()
    assert torch.equal(view, keep[2:]) and torch.equal(g1, g1_keep)   # ... and nothing live was touched
    assert x3.grad.data_ptr() not in (g1.data_ptr(), x2.grad.data_ptr())
    mlf = MLF(K=3)                                   # K levels: the pooled [T, K, J] spikes die in forward
    xm = torch.rand(4, 1, N) * 3
    a = mlf(xm)
    a_keep = a.clone()
    b = mlf(torch.rand(4, 1, N) * 3)
    assert torch.equal(a, a_keep) and not torch.equal(a, b) and torch.equal(mlf(xm), a)
    assert pool.kept <= pool.max_bytes


# -- truncated BPTT / online learning (issue #15 item 14) ----------------------------------------------
def _online(neuron, xs, w, detach: bool):
    """One backward (and SGD update of ``w``) at every step of ``xs``; returns the spikes per step."""
    opt = torch.optim.SGD([w] + list(neuron.parameters()), lr=0.1)
    outs = []
    for x_t in xs:
        out = neuron.step(x_t * w)
        opt.zero_grad()
        (out * torch.linspace(0.5, 1.5, out.shape[-1])).sum().backward()
        opt.step()
        outs.append(out.detach())
        if detach:
            snnedu.detach_state(neuron)
    return torch.stack(outs)


@pytest.mark.parametrize("name", list(ZOO))
def test_detach_state_allows_a_backward_at_every_step(name):
    make, _ = ZOO[name]
    xs = _x(6, 3, SAMPLE, grad=False)
    # without detaching, the second backward fails: what detach_state is for
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        _online(make(), xs, torch.ones(SAMPLE, requires_grad=True), detach=False)
    neuron, w = make(), torch.ones(SAMPLE, requires_grad=True)
    out = _online(neuron, xs, w, detach=True)
    assert out.shape[:2] == (6, 3)
    assert w.grad is not None and torch.isfinite(w.grad).all()
    assert neuron.v is not None and not neuron.v.requires_grad  # the state goes on, without its graph


@pytest.mark.parametrize("name", list(ZOO))
def test_detach_state_keeps_the_values_of_the_sequence(name):
    make, _ = ZOO[name]
    xs = _x(5, 2, SAMPLE, grad=False)
    full = make()
    ref = full(xs).detach()  # multi-step, no detaching
    stepped = _fresh_like(make, full)
    outs = []
    for x_t in xs:
        outs.append(stepped.step(x_t).detach())
        snnedu.detach_state(stepped)
    assert torch.equal(torch.stack(outs), ref)
    # the function walks a whole model and returns it; StatefulModule.detach_state does one layer
    net = nn.Sequential(nn.Flatten(), make())
    assert snnedu.detach_state(net) is net

"""Helpers for the method tests: read the gradients one training step leaves, and the gradients of a
reference loss written out in the test.

A step run with zero-learning-rate SGD optimizers leaves every weight where it was and every ``.grad``
as the step's backward pass made it, so the gradients of the recipe's loss can be compared with those
of the loss the method defines.
"""

import torch


def settled_discriminator(d, *example, iterations=20):
    """``d`` in eval mode after ``iterations`` training-mode forwards (power-iteration steps), so that its
    spectral norms hold σ estimates close to the real ones (outputs of order 1) and no longer move."""
    d.train()
    with torch.no_grad():
        for _ in range(iterations):
            d(*example)
    return d.eval()


def frozen_optimizer(module_or_params):
    params = module_or_params.parameters() if hasattr(module_or_params, "parameters") else module_or_params
    return torch.optim.SGD(list(params), lr=0.0)


def step_grads(module):
    """``{name: gradient}`` after a step (zeros where the step left none)."""
    return {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
            for n, p in module.named_parameters()}


def reference_grads(loss, module):
    """``{name: d loss / d parameter}`` (zeros where the loss does not depend on it)."""
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True, retain_graph=True)
    return {n: (g.detach() if g is not None else torch.zeros_like(p)) for (n, p), g in zip(named, grads)}


def assert_grads_equal(actual, expected, atol=1e-6, rtol=1e-4):
    assert set(expected) <= set(actual)
    for name, g in expected.items():
        torch.testing.assert_close(actual[name], g, atol=atol, rtol=rtol, msg=lambda m, n=name: "%s: %s" % (n, m))


def nonzero(grads, prefix):
    """Whether any gradient of a parameter whose name starts with ``prefix`` is non-zero."""
    return any(float(g.abs().sum()) > 0 for n, g in grads.items() if n.startswith(prefix))

"""Losses of the slimmable recipe: hinge GAN losses and inplace distillation across widths.

SlimGAN (METHODS.md §1) trains one discriminator head per width with the hinge loss, and
distils each narrow generator from the next wider one in the same step ("stepwise inplace
distillation"); distilling every width from the widest ("naive") is kept for ablations.
"""

import torch
import torch.nn.functional as F

DISTILL_MODES = ("stepwise", "naive", "none")


def d_hinge_loss(real_logits, fake_logits):
    """Discriminator hinge loss: E[max(0, 1 − D(real))] + E[max(0, 1 + D(fake))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()



def conditional_d_step(discriminator, opt_d, inputs, real, fake):
    """One hinge-loss step of a conditional (pix2pix) discriminator: (inputs, real) against (inputs, fake),
    the generator's output detached. Leaves the discriminator frozen (``requires_grad`` off) for the
    generator's step; returns the loss value."""
    discriminator.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    loss_d = d_hinge_loss(discriminator(torch.cat([inputs, real], 1)),
                          discriminator(torch.cat([inputs, fake.detach()], 1)))
    loss_d.backward()
    opt_d.step()
    discriminator.requires_grad_(False)
    return loss_d.item()

def g_hinge_loss(fake_logits):
    """Generator hinge loss: −E[D(G(x))]."""
    return -fake_logits.mean()


def inplace_distillation(outputs, mode="stepwise"):
    """``1/(N−1) Σ_i ‖G_{w_i}(x) − sg(teacher_i)‖²`` over outputs ordered narrowest → widest.

    ``stepwise``: the teacher of width i is width i+1 (SlimGAN); ``naive``: every width learns
    from the widest. The teacher is detached (stop-gradient), so the term only moves the
    narrower generator. ‖·‖² is the mean squared error per element. Multiply by λ outside.
    ``none`` and a single width give a zero loss.
    """
    if mode not in DISTILL_MODES:
        raise ValueError("distillation mode must be one of %s, got %r" % (DISTILL_MODES, mode))
    n = len(outputs)
    if mode == "none" or n < 2:
        return outputs[0].new_zeros(())
    total = outputs[0].new_zeros(())
    for i in range(n - 1):
        teacher = outputs[i + 1] if mode == "stepwise" else outputs[-1]
        total = total + F.mse_loss(outputs[i], teacher.detach())
    return total / (n - 1)

"""Instance optimisation for the uniGradICON family, as uniGradICON does it.

Upstream (``unigradicon`` 1.0.6 with ``icon_registration.itk_wrapper.finetune_execute``): a few
Adam steps (lr 2e-5) on the GradICON loss of the pair, with the network left in **eval** mode
(the BatchNorm layers keep their stored statistics; ``train()`` would normalise with the pair's
own statistics and overwrite the stored ones), and with images warped with a **zero boundary**
(what leaves the field of view counts as 0, not as the replicated border). The ``unigradicon``
package's loss class imports itk at its top (1.5 GB), so the loss is written here from the same
parts of ``icon_registration``: warping, the network's own similarity (LNCC) and weight lambda,
and the gradient-inverse-consistency term on a jittered half-resolution grid.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

FINITE_DIFFERENCE = 1e-3


def warp(image: Any, field: Any, spacing: Any) -> Any:
    """``image`` sampled at ``field`` (trilinear), zero outside the field of view."""
    from icon_registration.mermaidlite import compute_warped_image_multiNC

    return compute_warped_image_multiNC(image, field, spacing, 1, zero_boundary=True)


def gradicon_loss(net: Any, image_a: Any, image_b: Any) -> dict[str, Any]:
    """GradICON loss of ``net`` (an icon_registration GradientICONSparse) on one pair.

    Returns the total (lambda * inverse consistency + similarity) and its parts.
    """
    import torch

    identity = net.identity_map
    identity.isIdentity = True  # lets the wrappers add displacements without interpolation
    phi_ab = net.regis_net(image_a, image_b)
    phi_ba = net.regis_net(image_b, image_a)
    warped_a = warp(image_a, phi_ab(identity), net.spacing)
    warped_b = warp(image_b, phi_ba(identity), net.spacing)
    similarity = net.similarity(warped_a, image_b) + net.similarity(warped_b, image_a)

    # Inverse consistency: the Jacobian of phi_AB(phi_BA(x)) - x should vanish; estimated by
    # finite differences at jittered points of a half-resolution grid.
    jitter = 2 * torch.randn(identity.shape, device=identity.device) / identity.shape[-1]
    points = (identity + jitter)[:, :, ::2, ::2, ::2]
    error = points - phi_ab(phi_ba(points))
    terms = []
    for axis in range(3):
        step = torch.zeros((1, 3, 1, 1, 1), device=identity.device)
        step[0, axis] = FINITE_DIFFERENCE
        error_d = points + step - phi_ab(phi_ba(points + step))
        terms.append(torch.mean(((error - error_d) / FINITE_DIFFERENCE) ** 2))
    inverse_consistency = sum(terms)
    total = net.lmbda * inverse_consistency + similarity
    return {"total": total, "similarity": similarity, "inverse_consistency": inverse_consistency,
            "warped_a": warped_a, "warped_b": warped_b}


def instance_optimise(net: Any, image_a: Any, image_b: Any, steps: int, learning_rate: float
                      ) -> list[float]:
    """``steps`` Adam steps on the pair's GradICON loss, network in eval mode; returns the losses.

    The caller keeps a copy of the weights and restores them afterwards.
    """
    import torch

    net.eval()
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = gradicon_loss(net, image_a, image_b)["total"]
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    log.info("instance optimisation: loss %s", " -> ".join(f"{v:.4f}" for v in losses))
    return losses

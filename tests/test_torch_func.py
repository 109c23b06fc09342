"""The bounds under :mod:`torch.func` (tryout 12).

``torch.func.grad`` works as autograd does. ``vmap`` cannot read values, and the bounds read
them in their checks (finite scores, masks that leave valid rows): vmap failed with torch's
"data-dependent control flow"; it now raises an error naming the bound and the ways out
(leading dimensions are batches already; without masks, ``check_finite(False)``).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import grad, vmap

from mitools import bounds

F64 = torch.float64


def _scores() -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    s = torch.randn(3, 5, 5, generator=g, dtype=F64)
    s.diagonal(dim1=-2, dim2=-1).add_(2.0)
    return s


def _infonce64(s: torch.Tensor) -> torch.Tensor:
    """InfoNCE of one ``(N, N)`` score matrix, written out."""
    return (s.diagonal() - torch.logsumexp(s, 1)).mean() + math.log(s.shape[0])


@pytest.mark.parametrize("name", ["infonce", "dv", "nwj", "js", "smile", "jsd"])
def test_func_grad_matches_autograd(name):
    fn = getattr(bounds, name)
    s = _scores()[0]
    t = s.clone().requires_grad_()
    (ref,) = torch.autograd.grad(fn(t), t)
    torch.testing.assert_close(grad(fn)(s), ref)


def test_func_grad_of_infonce_against_its_formula():
    s = _scores()[0]
    torch.testing.assert_close(grad(bounds.infonce)(s), grad(_infonce64)(s))


@pytest.mark.parametrize("transform", ["vmap", "vmap_grad"])
def test_vmap_is_refused_by_name_while_the_checks_read_values(transform):
    s = _scores()
    fn = vmap(bounds.infonce) if transform == "vmap" else vmap(grad(bounds.infonce))
    with pytest.raises(RuntimeError, match=r"infonce: called under torch.func.vmap.*"
                                           r"check_finite\(False\)"):
        fn(s)
    mask = torch.ones(5, dtype=torch.bool)
    refused = pytest.raises(RuntimeError, match=r"dv: called under torch\.func\.vmap")
    with bounds.check_finite(False), refused:  # masks are checked whatever the setting
        vmap(lambda t: bounds.dv(t, row_mask=mask))(s)


def test_vmap_without_the_check_gives_per_problem_values_and_gradients():
    s = _scores()
    with bounds.check_finite(False):
        values = vmap(bounds.infonce)(s)
        grads = vmap(grad(bounds.infonce))(s)
    torch.testing.assert_close(values, torch.stack([_infonce64(t) for t in s]))
    torch.testing.assert_close(grads, torch.stack([grad(_infonce64)(t) for t in s]))

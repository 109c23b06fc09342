"""The critic interface and the MLP the critics are built from."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mitools.option_checks import check_int

__all__ = [
    "MLP",
    "Critic",
    "check_factors",
    "check_scores",
    "dot_scores",
    "mlp",
    "promoted_linear",
]


def promoted_linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """``layer(x)`` in the promoted dtype of ``x`` and the layer's weight.

    Half-precision features meet float32 weights in float32 (exact), float64 features get the
    weights cast to float64 (exact, and the gradient still reaches the float32 parameters):
    nothing is rounded, and a critic takes features of any floating dtype. Equal dtypes call
    the layer itself.

    Example:
        >>> import torch
        >>> promoted_linear(torch.nn.Linear(3, 2), torch.ones(4, 3, dtype=torch.float64)).dtype
        torch.float64
    """
    dtype = torch.promote_types(x.dtype, layer.weight.dtype)
    if x.dtype == dtype == layer.weight.dtype:
        return layer(x)
    bias = None if layer.bias is None else layer.bias.to(dtype)
    return F.linear(x.to(dtype), layer.weight.to(dtype), bias)


class MLP(nn.Sequential):
    """The multilayer perceptron of :func:`mlp`: an ``nn.Sequential`` whose linear layers run
    in the promoted dtype of their input and weights (:func:`promoted_linear`)."""

    if TYPE_CHECKING:  # nn.Module types its __call__ as returning Any; the call is forward's
        def __call__(self, x: Tensor) -> Tensor: ...

    def forward(self, x: Tensor) -> Tensor:
        for layer in self:
            x = promoted_linear(layer, x) if isinstance(layer, nn.Linear) else layer(x)
        return x


def mlp(
    dim_in: int,
    hidden: Sequence[int],
    dim_out: int,
    activation: type[nn.Module] = nn.ReLU,
) -> MLP:
    """A multilayer perceptron ``Linear -> activation -> ... -> Linear``.

    It takes inputs of any floating dtype: half precision is computed in the parameters'
    float32, float64 in float64 (see :class:`MLP`).

    Args:
        dim_in: input features.
        hidden: widths of the hidden layers (may be empty: a single linear map).
        dim_out: output features.
        activation: the non-linearity: an ``nn.Module`` class, or a callable that returns a
            new module each call (one per layer).

    Raises:
        ValueError: ``dim_in``, ``dim_out`` or a width of ``hidden`` not a positive int, or
            ``hidden`` not a sequence (``hidden=64`` for ``(64,)``).
        TypeError: ``activation`` a module instance (``nn.ReLU()`` for ``nn.ReLU``) or not
            callable, or a callable that does not return a module.

    Example:
        >>> mlp(20, (256, 256), 32)[0]
        Linear(in_features=20, out_features=256, bias=True)
    """
    # dim_out before the widths: the order in which they were refused before _check_widths
    dim_in = check_int("dim_in", dim_in)
    dim_out = check_int("dim_out", dim_out)
    hidden = _check_widths(hidden)
    _check_activation(activation)
    layers: list[nn.Module] = []
    width = dim_in
    for h in hidden:
        # each Linear before its activation: an activation drawing its own initial weights
        # (a learned slope) takes them from the RNG after the layer, so a seed gives the same
        # network as it always did
        linear = nn.Linear(width, h)
        layers += [linear, _new_activation(activation)]
        width = h
    layers.append(nn.Linear(width, dim_out))
    return MLP(*layers)


def _check_activation(activation: Any) -> None:
    """Refuse an ``activation`` that is a module instance or not callable (a ``TypeError``
    naming the class to pass)."""
    if isinstance(activation, nn.Module) or not callable(activation):
        raise TypeError(
            f"mlp: activation must be an nn.Module class such as nn.ReLU (one new module per "
            f"layer), got {activation!r}"
            + (f", an instance: pass the class, {type(activation).__name__}"
               if isinstance(activation, nn.Module) else ""))


def _new_activation(activation: Any) -> nn.Module:
    """``activation()``, refused with a ``TypeError`` unless it is an ``nn.Module``."""
    act = activation()
    if not isinstance(act, nn.Module):
        raise TypeError(f"mlp: activation() must return an nn.Module, got {type(act).__name__}")
    return act


def _check_widths(hidden: Any, name: str = "hidden",
                  kinds: type | tuple[type, ...] = Iterable) -> tuple[int, ...]:
    """Hidden widths as a tuple of Python ints, each at least 1; a tuple, so that two
    encoders can be built from one iterable. The one check of a ``hidden=`` option (the
    critics, :func:`mlp`, :func:`~mitools.estimate_mi`).

    ``kinds``: the containers taken (``Sequence`` where ``hidden`` is read more than once,
    as by :func:`~mitools.estimate_mi`: a generator would be empty at the second reading).

    Raises:
        ValueError: ``hidden`` is not an iterable (of ``kinds``) of positive ints (a bare int
            such as ``64``, a string, a float width); the message names ``name`` and the value.
    """
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, kinds):
        width_error = ""
    else:
        try:  # each width is an int option of its own
            return tuple(check_int(name, h) for h in cast(Iterable[Any], hidden))
        except ValueError as err:
            width_error = f": {err}"
    raise ValueError(f"{name} must be a sequence of positive ints (the widths of the hidden "
                     f"layers, e.g. (64, 64); () for none), got {hidden!r}{width_error}")


def _autocast_enabled(device_type: str) -> bool:
    """Whether ``torch.autocast`` is on for ``device_type`` (``False`` for a device type that
    autocast does not know, such as ``"meta"``)."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4: no device argument
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return device_type == "cuda" and bool(torch.is_autocast_enabled())
    except RuntimeError:  # "unknown device type for autocast"
        return False


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """A context in which ``torch.autocast`` is off on ``device``'s type (a no-op when it is
    off already).

    The library's own score arithmetic runs in it: the product of a separable critic's
    factors, the Gaussian densities' expansions, the local losses' fused paths. Under
    ``torch.autocast`` the critics' networks still run in the lower dtype, but their factors
    are then multiplied in float32: autocast's bfloat16 products rounded the scores to 8
    significant bits (0.5 at a score of 100, all of a log-density's quadratic expansion), and
    float16 products overflowed at 65504.
    """
    if _autocast_enabled(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


#: the device types whose autocast :func:`_no_autocast_anywhere` switches off
AUTOCAST_DEVICE_TYPES = ("cpu", "cuda", "xpu", "mps", "hpu")


def _no_autocast_anywhere() -> contextlib.ExitStack:
    """A context with ``torch.autocast`` off on every device type: for the entry points that
    compute in a ``dtype=`` of their own (:func:`~mitools.estimate_mi`). A training loop run
    inside one autocast region also never learns: autocast caches its half-precision copies
    of the weights until the region ends, so every step after the first computed with the
    first step's weights (``estimate_mi`` returned -0.05 nats for 0.99). A context, not a
    decorator: a wrapper's frame would shift the ``stacklevel`` of the callers' warnings."""
    stack = contextlib.ExitStack()
    for kind in AUTOCAST_DEVICE_TYPES:
        stack.enter_context(_no_autocast(torch.device(kind)))
    return stack


def dot_scores(u: Tensor, v: Tensor) -> Tensor:
    r"""Scores :math:`u_i^\top v_j`, computed in float32 or higher whatever the factors' dtype.

    Half-precision factors are upcast before the product: a positive pair's dot product can
    pass float16's largest value (65504) long before its factors do. Under
    ``torch.autocast`` the product is computed in that dtype too (autocast is off for it).

    Args:
        u: ``(..., N, E)``.
        v: ``(..., M, E)``; leading dimensions broadcast.

    Returns:
        ``(..., N, M)`` in ``u``'s and ``v``'s promoted dtype, at least float32.

    Raises:
        TypeError: ``u`` or ``v`` not a tensor.
        ValueError: ``u`` or ``v`` of fewer than 2 dims, or with different ``E`` (both
            shapes named).

    Example:
        >>> import torch
        >>> u = torch.full((2, 64), 40.0, dtype=torch.float16)
        >>> dot_scores(u, u)[0, 0]  # 102400 does not fit in float16
        tensor(102400.)
    """
    # checked here (shapes only, no synchronisation): torch's errors named neither factor
    # ("mat1 and mat2 shapes cannot be multiplied", an IndexError for 1-D factors)
    for name, f in (("u", u), ("v", v)):
        if not isinstance(f, Tensor):
            raise TypeError(f"dot_scores: {name} must be a tensor, got {type(f).__name__}")
        if f.dim() < 2:
            raise ValueError(
                f"dot_scores: {name} must have shape (..., N, E), got {tuple(f.shape)}"
            )
    if u.shape[-1] != v.shape[-1]:
        raise ValueError(
            f"dot_scores: u (..., N, E) and v (..., M, E) need the same E, got u of shape "
            f"{tuple(u.shape)} and v of shape {tuple(v.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(u.dtype, v.dtype), torch.float32)
    with _no_autocast(u.device):
        return torch.matmul(u.to(dtype), v.to(dtype).transpose(-1, -2))


def _shape(t: Any) -> str:
    return f"shape {tuple(t.shape)}" if isinstance(t, Tensor) else f"a {type(t).__name__}"


def check_scores(
    scores: Any, x: Tensor, y: Tensor, critic: str, leading: tuple[int, ...] | None = None,
    note: str = "",
) -> Tensor:
    """What a critic returned for ``x (..., N, Dx)`` and ``y (..., M, Dy)``, checked to be
    scores ``(..., N, M)``: a critic of one's own that returned its scores transposed,
    reduced, or for one sample fewer was taken as it was (a ``(N - 1, N)`` score matrix is a
    valid one, with one anchor less) or failed deep inside a bound.

    Args:
        scores: what the critic returned.
        x: the row-side inputs it was given.
        y: the column-side inputs.
        critic: the critic's name in the message.
        leading: the leading dimensions the scores must have (``None``: any, e.g. stacked
            models).
        note: appended to the message (what the caller's shapes stand for).

    Returns:
        ``scores``.

    Raises:
        TypeError: ``scores`` is not a tensor.
        ValueError: ``scores`` is not ``(..., N, M)`` (or its leading dimensions are not
            ``leading``); the message names the critic and the shapes given, expected and got.

    Example:
        >>> import torch
        >>> x, y = torch.zeros(4, 2), torch.zeros(4, 3)
        >>> check_scores(torch.zeros(4, 4), x, y, "my_critic").shape
        torch.Size([4, 4])
    """
    n, m = x.shape[-2], y.shape[-2]
    expected = "(..., N, M)" if leading is None else str((*leading, n, m))
    ok = isinstance(scores, Tensor) and scores.dim() >= 2 and tuple(scores.shape[-2:]) == (n, m)
    if ok and leading is not None:
        ok = tuple(scores.shape[:-2]) == tuple(leading)
    if not ok:
        error = ValueError if isinstance(scores, Tensor) else TypeError
        raise error(
            f"the critic {critic} returned {_shape(scores)} for x of shape {tuple(x.shape)} and "
            f"y of shape {tuple(y.shape)}; a critic returns the scores of every pair, "
            f"scores[..., i, j] = f(x_i, y_j), of shape {expected} with N={n} (x's samples) "
            f"and M={m} (y's){note}"
        )
    return scores


def checked_scores(critic: Callable[[Tensor, Tensor], Any], x: Tensor, y: Tensor,
                   leading: tuple[int, ...] | None = ()) -> Tensor:
    """``critic(x, y)``, checked by :func:`check_scores` under the critic's class name: the
    scores of every pair, ``(*leading, N, M)`` (``leading=None``: any leading dimensions).

    Raises:
        TypeError, ValueError: as :func:`check_scores`.
    """
    return check_scores(critic(x, y), x, y, type(critic).__name__, leading)


def check_factors(factors: Any, x: Tensor, y: Tensor, critic: str) -> tuple[Tensor, Tensor]:
    """What a separable critic's ``factorise`` returned for ``x (..., N, Dx)`` and
    ``y (..., M, Dy)``, checked to be factors ``u (..., N, E)`` and ``v (..., M, E)`` with
    ``x``'s and ``y``'s leading dimensions: factors of one sample fewer were taken as they
    were on every path of the local losses, and a wrong ``E`` failed in torch's matmul.

    Args:
        factors: what ``factorise`` returned.
        x: the row-side inputs it was given.
        y: the column-side inputs.
        critic: the critic's name in the message.

    Returns:
        ``(u, v)``.

    Raises:
        TypeError: not a pair of tensors.
        ValueError: ``u`` is not ``(*x.shape[:-1], E)``, ``v`` not ``(*y.shape[:-1], E)``, or
            their ``E`` differ; the message names the critic and every shape.

    Example:
        >>> import torch
        >>> x, y = torch.zeros(4, 2), torch.zeros(5, 3)
        >>> u, v = check_factors((torch.zeros(4, 8), torch.zeros(5, 8)), x, y, "my_critic")
        >>> u.shape, v.shape
        (torch.Size([4, 8]), torch.Size([5, 8]))
    """
    given = f"x of shape {tuple(x.shape)} and y of shape {tuple(y.shape)}"
    lead_u, lead_v = (", ".join(map(str, t.shape[:-1])) for t in (x, y))
    want = (f"u of shape ({lead_u}, E) and v of shape ({lead_v}, E), with forward(x, y) == "
            "u @ v.mT")
    pair = isinstance(factors, (tuple, list)) and len(factors) == 2
    if not pair or not all(isinstance(f, Tensor) for f in factors):
        got = (f"a {type(factors).__name__} of {len(factors)}"
               if isinstance(factors, (tuple, list)) else
               f"a single tensor of {_shape(factors)}" if isinstance(factors, Tensor) else
               _shape(factors))
        raise TypeError(
            f"the critic {critic}'s factorise returned {got} for {given}; it must return a "
            f"pair of tensors, {want}"
        )
    u, v = factors
    if (u.dim() != x.dim() or v.dim() != y.dim() or u.shape[:-1] != x.shape[:-1]
            or v.shape[:-1] != y.shape[:-1] or u.shape[-1] != v.shape[-1]):
        raise ValueError(
            f"the critic {critic}'s factorise returned u of shape {tuple(u.shape)} and v of "
            f"shape {tuple(v.shape)} for {given}; it must return {want}"
        )
    return u, v


class Critic(nn.Module):
    """Base class of critics: ``forward(x (..., N, Dx), y (..., M, Dy)) -> (..., N, M)``.

    Subclasses call ``_check_inputs`` first, so every critic reports bad types, shapes and
    devices alike. Scores are computed in float32 or higher, whatever the inputs' floating
    dtype: half precision is widened, float64 is kept (the parameters are cast up, exactly).
    Under ``torch.autocast`` a critic's networks run in autocast's dtype, but the scores are
    still float32 or higher: products of factors, bilinear and quadratic forms are computed
    with autocast off (a ConcatCritic's score, its network's output, keeps autocast's rounding).
    Integer features are refused: standardise them first (a float32 cast of large integers,
    e.g. timestamps, rounds them before their location is removed).

    A *separable* critic (``separable = True``) also implements :meth:`factorise`: factors
    ``u = φ(x)`` and ``v = ψ(y)`` with ``forward(x, y) == u @ vᵀ``, its temperature, bias and
    marginal terms folded in (as constant columns). That is the capability the local losses'
    blocked and attention paths use. A subclass that overrides ``forward`` without overriding
    ``factorise`` is treated as not separable.

    Raises:
        TypeError: at the call, an input that is not a tensor or not floating point.
        ValueError: at the call, an input with fewer than 2 dims or whose last axis is not
            ``dim_x`` / ``dim_y``, leading dimensions of ``x`` and ``y`` that do not
            broadcast, or inputs on another device than each other or the parameters.
    """

    dim_x: int
    dim_y: int
    #: Whether ``factorise`` gives the scores as a dot product of per-side factors.
    separable: bool = False
    #: What the errors call the object ("critic"; "conditional density" for a
    #: :class:`~mitools.conditionals.ConditionalDensity`).
    _kind: str = "critic"

    if TYPE_CHECKING:
        # nn.Module types its __call__ as returning Any; a critic's call returns the scores
        # (extra arguments, e.g. a pooled critic's mask, are forward's)
        def __call__(self, x: Tensor, y: Tensor, *args: Any, **kwargs: Any) -> Tensor: ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__ and "factorise" not in cls.__dict__:
            cls.separable = False  # a new forward is a black box to the fast paths

    def factorise(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Factors ``u (..., N, E)`` of ``x`` and ``v (..., M, E)`` of ``y`` with
        ``forward(x, y) == dot_scores(u, v)`` (separable critics only).

        The two sides are independent: ``x`` and ``y`` may have different leading shapes. A
        critic of one's own sets ``separable = True`` and overrides it (and ``forward``, which
        must agree: :func:`~mitools.estimate.estimate_mi` and the pooled critics call
        ``forward``, the local losses' fast paths ``factorise``).

        Args:
            x: ``(..., N, Dx)``.
            y: ``(..., M, Dy)``.

        Returns:
            ``(u, v)``: ``u`` of shape ``(*x.shape[:-1], E)``, ``v`` of shape
            ``(*y.shape[:-1], E)``, the same ``E`` (the local losses check this,
            ``mitools.critics.base.check_factors``, naming the critic and the shapes).

        Raises:
            TypeError: the critic is not separable (this default).
        """
        raise TypeError(f"{type(self).__name__} is not separable: it has no factorisation")

    def _check_inputs(self, x: Tensor, y: Tensor, broadcast: bool = True) -> None:
        name = type(self).__name__
        for arg, t, dim in (("x", x, self.dim_x), ("y", y, self.dim_y)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {arg} must be a torch.Tensor, got {type(t).__name__}")
            if not t.is_floating_point():
                raise TypeError(
                    f"{name}: {arg} must be floating point, got dtype {t.dtype}; standardise "
                    f"the features first, e.g. (({arg} - {arg}.mean(0)) / {arg}.std(0)) in "
                    "float64, then convert (a float32 cast of large integers rounds them)"
                )
            self._check_device(arg, t)
            self._check_rank_and_width(arg, t, dim)
        if x.device != y.device:
            raise ValueError(
                f"{name}: x is on {x.device} but y is on {y.device}; put both on one device"
            )
        if not broadcast:  # factors: the two sides are independent
            return
        try:
            torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
        except RuntimeError:
            raise ValueError(
                f"{name}: the leading dimensions of x {tuple(x.shape)} and y {tuple(y.shape)} "
                "do not broadcast"
            ) from None

    def _check_rank_and_width(self, arg: str, t: Tensor, dim: int) -> None:
        """``t`` must be ``(..., n, dim)``: the message names this object (critic or
        conditional density), the argument, its width and both widths it was built with."""
        name = type(self).__name__
        if t.dim() < 2:
            hint = f" (n samples of one feature: {arg}[:, None])" if dim == 1 else ""
            raise ValueError(
                f"{name}: {arg} must have shape (..., n, {dim}) with at least 2 dims, "
                f"got {tuple(t.shape)}{hint}"
            )
        if t.shape[-1] != dim:
            raise ValueError(
                f"{name}: {arg} has {t.shape[-1]} features (shape {tuple(t.shape)}) but "
                f"the {self._kind} was built with dim_x={self.dim_x} and dim_y={self.dim_y}: "
                f"x must be (..., N, {self.dim_x}) and y (..., M, {self.dim_y})"
            )

    def _check_device(self, arg: str, t: Tensor) -> None:
        """Refuse an input on another device than the critic's parameters."""
        param = next(self.parameters(), None)
        if param is not None and t.device != param.device:
            kind, var = self._kind, "critic" if self._kind == "critic" else "q"
            raise ValueError(
                f"{type(self).__name__}: {arg} is on {t.device} but the {kind}'s parameters "
                f"are on {param.device}; move the {kind} ({var}.to({str(t.device)!r})) or "
                f"the inputs ({arg}.to({str(param.device)!r}))"
            )

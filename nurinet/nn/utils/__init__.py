"""``torch.nn.utils``'s names: ``clip_grad_norm_`` and ``clip_grad_value_`` (defined in
:mod:`nurinet.nn.clip`, which stays importable)."""

from nurinet.nn.clip import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]

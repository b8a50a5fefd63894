"""``torch.nn.functional``'s place: ``import nurinet.nn.functional as F`` works as in PyTorch.

Every name of :mod:`nurinet.functional` is here, so code written against either module runs.
Where PyTorch's functional name means something else than nurinet's NumPy-named function of the
same name, this module holds PyTorch's meaning: ``transpose`` swaps two axes in both, and
``max``/``min`` (not in ``torch.nn.functional``) return ``(values, indices)`` along a dim here.
"""

from nurinet.functional import *
from nurinet.functional import __all__ as _functional_names
from nurinet.functional import max_torch as max  # noqa: F401 - PyTorch's meaning, listed in __all__
from nurinet.functional import min_torch as min  # noqa: F401

__all__ = list(_functional_names)

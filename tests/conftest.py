"""Shared test settings.

One intra-op thread: the suite runs many tiny forward passes, for which OpenMP spin-waiting
across threads costs far more than it gains on a 2-core machine (subprocess tests pin their
own thread count where results must match across runs).
"""

import torch

torch.set_num_threads(1)

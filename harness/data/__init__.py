"""Labelled image sets for evaluation and analysis: ImageNet-val on disk (both layouts), the CIFAR test split,
the evaluation preprocessing and its record.

Why a package of its own: evaluation and the attention analysis (``tasks/images``, ``analysis/``) read held-out
images; the training package keeps the training protocol (in-memory CIFAR with
on-device augmentation) and is reused here only to read the CIFAR files (``train.data.load_cifar``).
"""

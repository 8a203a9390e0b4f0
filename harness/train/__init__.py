"""Short CIFAR training runs: data on the device (``data``), the training loop (``loop``), multi-process
data parallelism (``distributed``) and seed statistics (``significance``).

The protocol follows ResNeXt's CIFAR recipe ([RX] Appendix A): random 32×32 crops of the zero-padded 40×40
image plus horizontal flips, SGD with Nesterov momentum 0.9, weight decay 5e-4, batch 128, lr 0.1.
Import the submodules directly; this package imports nothing so that ``import harness.train`` stays cheap.
"""

"""Paper-faithful model families; importing this package registers them."""

from harness.models import reference, resnext, senet, sknet  # noqa: F401  (registration side effect)

"""Paper-faithful model families (``resnext``, ``senet``, ``sknet``) and the registry that names them.

Importing this package registers nothing and imports no torch: ``harness.models.registry`` imports the
families the first time the registry is used.
"""

"""Runner hooks, registered in :data:`mmaff.registry.HOOKS` (``type=
'mmaff.<Name>'`` from any scope)."""

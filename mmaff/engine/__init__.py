"""Runner-side pieces: hooks (registered in :data:`mmaff.registry.HOOKS`)."""

"""Layer 2, one run: its config, preparation, training, callbacks, record, agents, envs, references."""

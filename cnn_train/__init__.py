"""The training library: input pipeline, optimiser and schedules, steps, sharding, checkpoints."""

"""Studies: grids of runs over strategies, optimizers, teachers, objectives and seeds."""

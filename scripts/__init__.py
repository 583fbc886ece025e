"""Developer and operator scripts (seed data, ...); they use the product through its public APIs."""

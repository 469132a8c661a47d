"""`nas compare`: search winners, random architectures and baselines retrained by one recipe (design, analysis,
report)."""

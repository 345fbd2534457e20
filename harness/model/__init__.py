"""The model: what a run is (scenario, mechanism, layout, RunSpec), what it leaves (typed records, their JSON
Schema, the invariants between them), and what an outcome means (severity, health of a slot, standing)."""

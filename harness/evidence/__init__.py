"""Evidence: cores kept per crash, stacks from cores and from hung processes, crash signatures, isolate's search."""

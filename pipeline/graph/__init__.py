"""Graph assembly: the batch graph, the streaming graph and the dead-letter replay graph."""

"""Model builders (language model, entity models); never needed at run time."""

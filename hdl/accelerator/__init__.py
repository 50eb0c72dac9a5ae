"""The whole accelerator: the model it runs and its parameters."""

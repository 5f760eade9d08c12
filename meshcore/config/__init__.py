"""The stack's config: the model, its field types, the parser and the checks across sections."""

"""The mesh doctor's pure part: what the stack wants, what was observed, the checks and the report."""

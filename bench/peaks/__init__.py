"""Peak rates: the datasheet table and the formulas for SKUs it lacks."""

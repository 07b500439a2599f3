"""The business-plan domain pack: sectioned plans searched under a rubric judge, checked against a financial model."""

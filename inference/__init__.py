"""Model serving: preprocessing, artifacts and the predictor. Imports no Django models."""

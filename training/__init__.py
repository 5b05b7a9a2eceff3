"""Training pipeline for the lesion classifier. Never imports Django."""

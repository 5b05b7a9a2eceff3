def case_analysis_enqueue(*, case_id: int) -> None:
    """Implemented by the inference service."""

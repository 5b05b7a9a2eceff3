from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    """The inference side of a case: queue, score, record, sum up, sweep, and the safety net.

    Above ``diagnosis`` (whose models it writes) and below ``triage``: diagnosis never imports it.
    """

    name = "analysis"
    verbose_name = "Analysis"

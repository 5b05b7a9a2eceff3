from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    """The inference side of a case: score, record, sum up, sweep, and the safety net.

    Above ``diagnosis`` (whose models it writes; diagnosis queues the photos by task name and
    never imports it), beside ``triage`` (neither imports the other).
    """

    name = "analysis"
    verbose_name = "Analysis"

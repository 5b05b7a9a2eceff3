"""Fetching one object through a user-scoped selector, auditing attempts on others' objects.

Another clinic's record answers 404 like a missing one (its existence is not confirmed),
but an attempt to reach an object that exists outside the user's scope is an audit event
(``access.denied``), so probing shows up in the audit log.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from accounts.services import access_denied_record


def scoped_object_or_404(queryset: QuerySet, *, pk, request):
    try:
        return queryset.get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        model = queryset.model
        try:
            exists = model._default_manager.filter(pk=pk).exists()
        except (ValueError, TypeError):
            exists = False
        if exists:
            access_denied_record(user=request.user, object_type=model._meta.model_name, object_id=pk, request=request)
        raise Http404(f"No {model._meta.verbose_name} matches the given query.") from None

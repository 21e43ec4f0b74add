"""A one-view Django site for the dashboard's mounting test (its ROOT_URLCONF)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("the user's Django app")


urlpatterns = [path("", home)]

"""API routes of accounts (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.accounts.api import LoginView, LogoutView

urlpatterns = [
    path("login", LoginView.as_view(), name="login"),
    path("logout", LogoutView.as_view(), name="logout"),
]

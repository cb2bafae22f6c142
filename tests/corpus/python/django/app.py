"""A one-file Django project: `/` renders templates/index.html, `/static/corpus.css` is served
by django.contrib.staticfiles from static/ (runserver, DEBUG) on $PORT."""

import os
import sys
from pathlib import Path

from django.conf import settings
from django.shortcuts import render
from django.urls import path

BASE = Path(__file__).resolve().parent
settings.configure(
    DEBUG=True,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="binpack-corpus-not-a-secret",
    INSTALLED_APPS=["django.contrib.staticfiles"],
    STATIC_URL="/static/",
    STATICFILES_DIRS=[BASE / "static"],
    TEMPLATES=[
        {"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [BASE / "templates"]}
    ],
)


def index(request):
    return render(request, "index.html", {"framework": "django", "items": ["template", "static"]})


urlpatterns = [path("", index)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    port = os.environ.get("PORT", "8000")
    execute_from_command_line([sys.argv[0], "runserver", "--noreload", f"0.0.0.0:{port}"])

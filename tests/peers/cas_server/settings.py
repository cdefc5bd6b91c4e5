"""Django settings for a real CAS 3.0 server in tests: django-mama-cas, run by tests/peers/cas.py.

Not part of unioncat: it runs in its own virtualenv under $UNIONCAT_CACHE (Django never enters
unioncat's environment).  Any service on 127.0.0.1 or localhost may use it; tickets carry the
user's name attributes (``username``, ``full_name``, ``short_name``).
"""
import os

BASE = os.environ["CAS_DATA_DIR"]
SECRET_KEY = "unioncat-cas-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                  "django.contrib.messages", "mama_cas"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware", "django.middleware.common.CommonMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware", "django.contrib.auth.middleware.AuthenticationMiddleware",
              "django.contrib.messages.middleware.MessageMiddleware"]
ROOT_URLCONF = "urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                 "django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(BASE, "cas.sqlite3")}}
USE_TZ = True
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MAMA_CAS_SERVICES = [{
    "SERVICE": r"^http://(127\.0\.0\.1|localhost)(:\d+)?/",
    "CALLBACKS": ["mama_cas.callbacks.user_name_attributes"],
}]

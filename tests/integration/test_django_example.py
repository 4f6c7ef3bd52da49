"""examples/django's view, rendered by Django's own test client: the page a site serves carries
the widget and options with a token frontdesk accepts, and a reload is the same visitor."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "django"
SECRET = "django-example-test-secret-0123456789"

urlpatterns: list = []  # filled in by example(); this module is the ROOT_URLCONF


def example():
    """The example as the package `frontdesk_example` (its directory is called `django`, which
    would shadow Django itself), with Django configured around it once."""
    import django
    from django.conf import settings
    from django.urls import path

    if "frontdesk_example" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "frontdesk_example", EXAMPLE / "__init__.py", submodule_search_locations=[str(EXAMPLE)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["frontdesk_example"] = pkg
        spec.loader.exec_module(pkg)
    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["testserver"],
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
            MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                        "django.contrib.auth.middleware.AuthenticationMiddleware"],
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            ROOT_URLCONF=__name__,
            TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                        "DIRS": [str(EXAMPLE / "templates")]}],
            FRONTDESK={"BOSH": "https://example.com/bosh", "DOMAIN": "anon.example.com",
                       "COMPONENT": "chat.example.com", "SITE": "acme", "TOKEN_SECRET": SECRET,
                       "WIDGET_URL": "/static/frontdesk/"},
        )
        django.setup()
    from frontdesk_example import views
    urlpatterns[:] = [path("chat/", views.chat, name="chat")]
    return views


def options(html: str) -> dict:
    marker = '<script id="frontdesk-options" type="application/json">'
    start = html.index(marker) + len(marker)
    return json.loads(html[start:html.index("</script>", start)])


def test_the_view_renders_the_widget_with_a_fresh_token():
    example()
    from django.test import Client

    client = Client()
    r = client.get("/chat/")
    assert r.status_code == 200
    html = r.content.decode()
    opts = options(html)
    assert {k: opts[k] for k in ("bosh", "domain", "component", "site")} == {
        "bosh": "https://example.com/bosh", "domain": "anon.example.com",
        "component": "chat.example.com", "site": "acme"}
    assert "nick" not in opts, opts  # anonymous: the widget names them
    assert "/static/frontdesk/frontdesk-widget.js" in html and "FrontdeskWidget.mount" in html
    # The visitor id is a valid room name: lower-case hex, no '_'.
    assert opts["visitor"] and all(c in "0123456789abcdef" for c in opts["visitor"])

    # The token is the example's mint_token for this visitor (checked against the vectors
    # frontdesk's own tests use, and accepted by frontdesk in test_widget.py), valid for a day.
    from frontdesk_example.frontdesk_token import mint_token
    expires = int(opts["token"].split(".")[0])
    assert opts["token"] == mint_token(SECRET, "acme", opts["visitor"], expires=expires)
    assert 86000 < expires - time.time() <= 86400

    # The same browser session is the same visitor after a reload, with a fresh page.
    opts2 = options(client.get("/chat/").content.decode())
    assert opts2["visitor"] == opts["visitor"]
    # Another browser is another visitor.
    assert options(Client().get("/chat/").content.decode())["visitor"] != opts["visitor"]


def test_values_cannot_inject_html():
    views = example()
    from django.test import RequestFactory
    from django.contrib.sessions.backends.signed_cookies import SessionStore
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/chat/")
    request.session = SessionStore()
    request.user = AnonymousUser()
    from django.conf import settings
    old = settings.FRONTDESK
    settings.FRONTDESK = dict(old, BOSH="https://x/</script><script>alert(1)</script>")
    try:
        html = views.chat(request).content.decode()
    finally:
        settings.FRONTDESK = old
    assert "<script>alert(1)" not in html
    assert options(html)["bosh"] == "https://x/</script><script>alert(1)</script>"

    # A signed-in user's name becomes the nick, as data.
    class SignedIn:
        is_authenticated = True

        def get_full_name(self):
            return "Ann </script><script>alert(2)</script>"

    request.user = SignedIn()
    html = views.chat(request).content.decode()
    assert "<script>alert(2)" not in html
    assert options(html)["nick"] == "Ann </script><script>alert(2)</script>"
